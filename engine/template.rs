//! The template language shared by static checks (`plan`) and rendering (`exec`): minijinja with
//! strict undefined and the filters runbooks rely on.

use std::sync::OnceLock;

use base64::Engine as _;
use minijinja::value::{Kwargs, Serde, Value};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};

use crate::limits;

/// The shared environment (built once; filters and globals never change).
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(build)
}

/// Names that are functions, not data, in every template.
pub const GLOBALS: [&str; 7] = [
    "now",
    "range",
    "dict",
    "namespace",
    "lipsum",
    "cycler",
    "joiner",
];

fn build() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // A script's or body's last newline is part of it (`printf '%s\n'`, a YAML `|` block).
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters with one whitespace option are a valid syntax"),
    );
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
fn strftime(value: &Value, format: &str, _kwargs: Kwargs) -> Result<String, Error> {
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
    fn undefined_is_an_error() {
        assert!(render("{{ params.missing }}", &ctx()).is_err());
        assert!(render("x {{ params.missing }}", &ctx()).is_err());
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
