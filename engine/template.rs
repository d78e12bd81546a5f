//! The template language shared by static checks (`plan`) and rendering (`exec`): minijinja with
//! strict undefined and the filters runbooks rely on.

use std::sync::OnceLock;

use base64::Engine as _;
use minijinja::value::{Serde, Value};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

use crate::limits;

/// The shared environment (built once; filters and globals never change).
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(build)
}

/// Names that are functions, not data, in every template (the environment's globals).
pub const GLOBALS: [&str; 5] = ["now", "range", "dict", "namespace", "debug"];

/// The template syntax: `{{ … }}` and `{% … %}` as in Jinja, and comments written `{## … ##}`.
///
/// Templates are mostly shell scripts, and `{#` is everyday shell: `${#name}` and `${#list[@]}`
/// are lengths. With Jinja's `{# … #}` comments such a script would be cut at `{#` (or fail
/// with "unexpected end of comment"), so comments take a start that shell does not write; the
/// comment start cannot be switched off. A script's or body's last newline is part of it
/// (`printf '%s\n'`, a YAML `|` block).
pub fn syntax() -> minijinja::syntax::SyntaxConfig {
    minijinja::syntax::SyntaxConfig::builder()
        .comment_delimiters("{##", "##}")
        .keep_trailing_newline(true)
        .build()
        .expect("distinct start delimiters and non-empty end delimiters are a valid syntax")
}

/// Whether a text has any template markup: if not, it is rendered as written.
pub fn has_markup(text: &str) -> bool {
    let syntax = environment().syntax();
    [
        syntax.variable_delimiters().0,
        syntax.block_delimiters().0,
        syntax.comment_delimiters().0,
    ]
    .iter()
    .any(|start| text.contains(start))
}

/// Whether a text is a template: it has markup, and that markup parses (`{{ run.id }}` is one;
/// Go's `{{.Names}}` is text to this engine).
pub fn is_template(text: &str) -> bool {
    has_markup(text)
        && crate::limits::check(text, false).is_ok()
        && environment().template_from_str(text).is_ok()
}

/// The one expression a template of text and `{{ … }}` parts renders the same as:
/// `/backups/{{ run.id }}` → `'/backups/' ~ run.id`. `None` when it has statements or comments.
pub fn as_expression(text: &str) -> Option<String> {
    if text.contains("{%") || text.contains("{##") {
        return None;
    }
    let quote = |raw: &str| format!("'{}'", raw.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let end = start + rest[start..].find("}}")?;
        if start > 0 {
            parts.push(quote(&rest[..start]));
        }
        let expr = rest[start + 2..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
        let plain = expr
            .chars()
            .all(|c| c.is_alphanumeric() || "_.[]'\"".contains(c));
        parts.push(if plain || text.trim() == &rest[start..end + 2] {
            expr.to_owned()
        } else {
            format!("({expr})")
        });
        rest = &rest[end + 2..];
    }
    if !rest.is_empty() {
        parts.push(quote(rest));
    }
    Some(parts.join(" ~ "))
}

fn build() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Undefined values remember the expression they came from, so that an error names it
    // (`steps.probe.outputs.code` is undefined), in release builds too.
    env.set_debug(true);
    env.set_syntax(syntax());
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_capture", regex_capture);
    env.add_filter("quote", quote);
    env.add_filter("from_json", from_json);
    env.add_filter("to_json", to_json);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("strftime", strftime);
    env.add_function("now", now);
    env.set_fuel(Some(limits::TEMPLATE_FUEL));
    env
}

/// A template past the limits, refused before the engine parses it.
fn beyond_limits(exceeded: &limits::Exceeded) -> Error {
    Error::new(ErrorKind::InvalidOperation, exceeded.to_string())
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, message.into())
}

fn compile(pattern: &str) -> Result<regex::Regex, Error> {
    regex::Regex::new(pattern).map_err(|e| invalid(format!("invalid regex `{pattern}`: {e}")))
}

/// The first match of `pattern`, or none.
fn regex_search(value: &str, pattern: &str) -> Result<Value, Error> {
    Ok(compile(pattern)?
        .find(value)
        .map_or(Value::from(()), |m| Value::from(m.as_str())))
}

/// A group of the first match; no match is an error, never an empty string.
fn regex_capture(value: &str, pattern: &str, group: Option<usize>) -> Result<String, Error> {
    let group = group.unwrap_or(1);
    let re = compile(pattern)?;
    let caps = re.captures(value).ok_or_else(|| {
        invalid(format!(
            "regex_capture: `{pattern}` does not match {}",
            preview(value)
        ))
    })?;
    caps.get(group)
        .map(|m| m.as_str().to_owned())
        .ok_or_else(|| invalid(format!("regex_capture: `{pattern}` has no group {group}")))
}

fn preview(value: &str) -> String {
    let short: String = value.chars().take(80).collect();
    if short.len() < value.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}

/// POSIX shell quoting: the value arrives as one literal argument.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn quote(value: &Value) -> String {
    let text = value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned);
    shell_quote(&text)
}

fn from_json(value: &str) -> Result<Value, Error> {
    serde_json::from_str::<serde_json::Value>(value)
        .map(|v| to_value(&v))
        .map_err(|e| invalid(format!("from_json: {e}")))
}

fn to_json(value: &Value) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| invalid(format!("to_json: {e}")))
}

fn b64encode(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

fn b64decode(value: &str) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| invalid(format!("b64decode: {e}")))?;
    String::from_utf8(bytes).map_err(|_| invalid("b64decode: the decoded bytes are not UTF-8 text"))
}

/// Formats a timestamp (RFC 3339 text or Unix seconds) with a strftime format, in UTC.
fn strftime(value: &Value, format: &str) -> Result<String, Error> {
    let ts = if let Some(text) = value.as_str() {
        text.parse::<jiff::Timestamp>()
            .map_err(|e| invalid(format!("strftime: `{text}` is not a timestamp: {e}")))?
    } else if let Ok(secs) = i64::try_from(value.clone()) {
        jiff::Timestamp::from_second(secs).map_err(|e| invalid(format!("strftime: {e}")))?
    } else {
        return Err(invalid(format!("strftime: {value} is not a timestamp")));
    };
    jiff::fmt::strtime::format(format, &ts.to_zoned(jiff::tz::TimeZone::UTC))
        .map_err(|e| invalid(format!("strftime: {e}")))
}

/// The current time, UTC, as RFC 3339 text.
fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Converts any serializable data to a template value.
pub fn to_value<T: serde::Serialize>(data: &T) -> Value {
    Value::from(Serde(data))
}

/// If the text is exactly one `{{ … }}`, the expression inside.
pub fn single_expression(text: &str) -> Option<&str> {
    let t = text.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(
        inner
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim(),
    )
}

/// Renders a template: a single `{{ expr }}` keeps the expression's type, anything else is text.
pub fn render(text: &str, ctx: &Value) -> Result<serde_json::Value, Error> {
    let env = environment();
    limits::check(text, false).map_err(|e| beyond_limits(&e))?;
    if let Some(expr) = single_expression(text) {
        let value = env.compile_expression(expr)?.eval(ctx.clone())?;
        if value.is_undefined() {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                format!("`{expr}` is undefined"),
            ));
        }
        return to_json_value(&value);
    }
    env.render_str(text, ctx.clone())
        .map(serde_json::Value::String)
}

/// Renders a template to text (for commands, URLs, headers).
pub fn render_text(text: &str, ctx: &Value) -> Result<String, Error> {
    limits::check(text, false).map_err(|e| beyond_limits(&e))?;
    environment().render_str(text, ctx.clone())
}

/// Evaluates a bare expression.
pub fn eval(expr: &str, ctx: &Value) -> Result<Value, Error> {
    limits::check(expr, true).map_err(|e| beyond_limits(&e))?;
    environment().compile_expression(expr)?.eval(ctx.clone())
}

/// Converts a template value to JSON (undefined is an error, never null).
pub fn to_json_value(value: &Value) -> Result<serde_json::Value, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "the value is undefined",
        ));
    }
    serde_json::to_value(value).map_err(|e| invalid(format!("cannot convert the value: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Value {
        to_value(&serde_json::json!({"params": {"ports": [1, 2], "name": "a b"}}))
    }

    #[test]
    fn a_single_expression_keeps_its_type() {
        assert_eq!(
            render("{{ params.ports }}", &ctx()).unwrap(),
            serde_json::json!([1, 2])
        );
        assert_eq!(
            render("p={{ params.ports[0] }}", &ctx()).unwrap(),
            serde_json::json!("p=1")
        );
    }

    #[test]
    fn a_trailing_newline_is_kept() {
        assert_eq!(
            render_text("echo {{ params.name }}\n", &ctx()).unwrap(),
            "echo a b\n"
        );
    }

    #[test]
    fn undefined_is_an_error_that_names_the_expression() {
        for text in ["{{ params.missing }}", "x {{ params.missing }}"] {
            let err = render(text, &ctx()).expect_err(text);
            assert_eq!(err.kind(), ErrorKind::UndefinedError, "{text}");
            assert!(
                err.detail()
                    .is_some_and(|d| d.contains("`params.missing` is undefined")),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn shell_text_passes_through_and_comments_are_written_with_two_hashes() {
        let script = "a=(1 2 3); echo ${#a[@]} ${#HOME} {#x#}";
        assert_eq!(render_text(script, &ctx()).unwrap(), script);
        assert_eq!(
            render_text("echo {{ params.name }}{## why ##}!", &ctx()).unwrap(),
            "echo a b!"
        );
        assert!(!has_markup("echo ${#a[@]}"));
        assert!(has_markup("x {## y ##}"));
    }

    #[test]
    fn a_template_is_markup_that_parses() {
        assert!(is_template("/backups/{{ run.id }}"));
        assert!(!is_template("docker ps --format {{.Names}}"));
        assert!(!is_template("plain text"));
    }

    #[test]
    fn text_and_expressions_join_into_one_expression() {
        assert_eq!(
            as_expression("/backups/{{ run.id }}").as_deref(),
            Some("'/backups/' ~ run.id")
        );
        assert_eq!(as_expression("{{ a + 1 }}").as_deref(), Some("a + 1"));
        assert_eq!(
            as_expression("it's {{ a | upper }}!").as_deref(),
            Some("'it\\'s ' ~ (a | upper) ~ '!'")
        );
        assert_eq!(as_expression("{% if a %}x{% endif %}"), None);
    }

    #[test]
    fn the_globals_are_the_environments() {
        let mut names: Vec<&str> = environment().globals().map(|(n, _)| n).collect();
        names.sort_unstable();
        let mut listed = GLOBALS.to_vec();
        listed.sort_unstable();
        assert_eq!(names, listed);
    }

    #[test]
    fn quote_makes_one_literal_argument() {
        assert_eq!(shell_quote("'; touch PWNED #"), r"''\''; touch PWNED #'");
        assert_eq!(shell_quote("plain-1.2"), "plain-1.2");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(
            render_text("{{ params.name | quote }}", &ctx()).unwrap(),
            "'a b'"
        );
    }

    #[test]
    fn regex_filters() {
        let c = to_value(&serde_json::json!({"out": "uuid = b54a-61\nstatus = processing"}));
        assert_eq!(
            render_text("{{ out | regex_capture('uuid = (\\\\S+)') }}", &c).unwrap(),
            "b54a-61"
        );
        assert!(render_text("{{ out | regex_capture('nope (x)') }}", &c).is_err());
        assert_eq!(
            render("{{ out | regex_search('nope') }}", &c).unwrap(),
            serde_json::Value::Null
        );
    }

    #[test]
    fn encodings_and_time() {
        let c = Value::from(());
        assert_eq!(
            render_text("{{ 'hi' | b64encode | b64decode }}", &c).unwrap(),
            "hi"
        );
        assert_eq!(
            render_text("{{ '{\"a\": 1}' | from_json | to_json }}", &c).unwrap(),
            "{\"a\":1}"
        );
        assert_eq!(
            render_text("{{ '2026-11-21T06:00:00Z' | strftime('%Y.%m.%d') }}", &c).unwrap(),
            "2026.11.21"
        );
        assert!(
            render_text("{{ now() | strftime('%Y') }}", &c)
                .unwrap()
                .starts_with("20")
        );
    }
}
