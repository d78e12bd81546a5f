//! What a template can call, as the engine's template environment provides it: minijinja's
//! builtin filters, tests and functions, the engine's own (`regex_search`, `quote`, `now`, …),
//! each with the arguments it takes; and methods, of which there are almost none — values (text,
//! lists, maps, numbers) have no methods in this engine, only `loop` has `cycle` and `changed`.
//! For the Python methods people reach for (`.split()`, `.endswith()`, `.items()`), the filter,
//! test or operator that does the same.
//!
//! The tables are checked against the environment by this module's tests: every name exists, and
//! one argument fewer or more than a signature allows fails there as it would in a run.

/// What a value is, as far as the static checks can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    Str,
    /// A list.
    List,
    /// A map.
    Map,
    /// A number.
    Number,
    /// true or false.
    Bool,
    /// Data of a kind known only at run time (an output, an item, `result.json`).
    Data,
    /// `params`: its attributes have the declared types.
    Params,
    /// `result`: `stdout`, `status`, … have known kinds.
    Result,
    /// `steps`: its attributes are steps.
    Steps,
    /// `steps.<id>`: `status`, `outputs`, `items`.
    Step,
    /// A map whose every attribute is text (`run`, `secrets`, `env`).
    Texts,
    /// `loop` inside a `{% for %}`.
    Loop,
    /// Anything else a template defines (a macro, a macro's argument, a namespace).
    Unknown,
}

impl Kind {
    /// Whether this is data: something with no methods at all.
    pub fn is_data(self) -> bool {
        !matches!(self, Self::Loop | Self::Unknown)
    }

    /// The plural noun for values of this kind (`strings`), when the kind is known.
    pub fn plural(self) -> Option<&'static str> {
        match self {
            Self::Str => Some("strings"),
            Self::List => Some("lists"),
            Self::Map | Self::Params | Self::Result | Self::Steps | Self::Step | Self::Texts => {
                Some("maps")
            }
            Self::Number => Some("numbers"),
            Self::Bool => Some("booleans"),
            Self::Data | Self::Loop | Self::Unknown => None,
        }
    }
}

/// The keyword arguments a callable accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keywords {
    /// None: a keyword argument is an error.
    None,
    /// Exactly these.
    Named(&'static [&'static str]),
    /// Any (they are passed on, e.g. to the test a `select` applies).
    Any,
}

/// How a filter, test, function or method is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// Its name.
    pub name: &'static str,
    /// Its positional parameters, in order (a filter's and a test's value not counted).
    pub params: &'static [&'static str],
    /// How many of them must be given (positionally, or by keyword where one is accepted).
    pub required: usize,
    /// Whether any number of further positional arguments may follow.
    pub variadic: bool,
    /// Its keyword arguments.
    pub keywords: Keywords,
    /// What it returns.
    pub returns: Kind,
}

impl Signature {
    /// How it is written with all its arguments, e.g. `regex_capture(pattern[, group])`.
    pub fn usage(&self) -> String {
        let mut args: Vec<String> = Vec::new();
        for (i, p) in self.params.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            args.push(if i < self.required {
                format!("{sep}{p}")
            } else {
                format!("[{sep}{p}]")
            });
        }
        if self.variadic {
            args.push(
                if self.params.is_empty() {
                    "…"
                } else {
                    ", …"
                }
                .to_owned(),
            );
        }
        if args.is_empty() {
            self.name.to_owned()
        } else {
            format!("{}({})", self.name, args.concat())
        }
    }
}

const fn sig(
    name: &'static str,
    params: &'static [&'static str],
    required: usize,
    keywords: Keywords,
    returns: Kind,
) -> Signature {
    Signature {
        name,
        params,
        required,
        variadic: false,
        keywords,
        returns,
    }
}

const fn variadic(
    name: &'static str,
    params: &'static [&'static str],
    required: usize,
    keywords: Keywords,
    returns: Kind,
) -> Signature {
    Signature {
        name,
        params,
        required,
        variadic: true,
        keywords,
        returns,
    }
}

const NONE: Keywords = Keywords::None;
const ANY: Keywords = Keywords::Any;

/// Every filter: minijinja's builtins (with the `json` feature), then the engine's own.
pub const FILTERS: &[Signature] = &[
    sig("safe", &[], 0, NONE, Kind::Str),
    sig("escape", &[], 0, NONE, Kind::Str),
    sig("e", &[], 0, NONE, Kind::Str),
    sig("lower", &[], 0, NONE, Kind::Str),
    sig("upper", &[], 0, NONE, Kind::Str),
    sig("title", &[], 0, NONE, Kind::Str),
    sig("capitalize", &[], 0, NONE, Kind::Str),
    sig("replace", &["from", "to"], 2, NONE, Kind::Str),
    sig("length", &[], 0, NONE, Kind::Number),
    sig("count", &[], 0, NONE, Kind::Number),
    sig(
        "dictsort",
        &[],
        0,
        Keywords::Named(&["by", "case_sensitive", "reverse"]),
        Kind::List,
    ),
    sig("items", &[], 0, NONE, Kind::List),
    sig("reverse", &[], 0, NONE, Kind::Data),
    sig("trim", &["chars"], 0, NONE, Kind::Str),
    sig(
        "join",
        &["d", "attribute"],
        0,
        Keywords::Named(&["d", "attribute"]),
        Kind::Str,
    ),
    sig("split", &["separator", "maxsplits"], 0, NONE, Kind::List),
    sig("lines", &[], 0, NONE, Kind::List),
    sig("default", &["value", "boolean"], 0, NONE, Kind::Data),
    sig("d", &["value", "boolean"], 0, NONE, Kind::Data),
    sig(
        "round",
        &["precision", "method"],
        0,
        Keywords::Named(&["precision", "method"]),
        Kind::Number,
    ),
    sig("abs", &[], 0, NONE, Kind::Number),
    sig(
        "int",
        &["default", "base"],
        0,
        Keywords::Named(&["default", "base"]),
        Kind::Number,
    ),
    sig(
        "float",
        &["default"],
        0,
        Keywords::Named(&["default"]),
        Kind::Number,
    ),
    sig("attr", &["name"], 1, NONE, Kind::Data),
    sig("first", &[], 0, NONE, Kind::Data),
    sig("last", &[], 0, NONE, Kind::Data),
    sig(
        "min",
        &[],
        0,
        Keywords::Named(&["case_sensitive", "attribute"]),
        Kind::Data,
    ),
    sig(
        "max",
        &[],
        0,
        Keywords::Named(&["case_sensitive", "attribute"]),
        Kind::Data,
    ),
    sig(
        "sort",
        &[],
        0,
        Keywords::Named(&["case_sensitive", "reverse", "attribute"]),
        Kind::List,
    ),
    sig("list", &[], 0, NONE, Kind::List),
    sig("string", &[], 0, NONE, Kind::Str),
    sig("bool", &[], 0, NONE, Kind::Bool),
    sig("batch", &["count", "fill_with"], 1, NONE, Kind::List),
    sig("slice", &["count", "fill_with"], 1, NONE, Kind::List),
    sig(
        "sum",
        &["attribute", "start"],
        0,
        Keywords::Named(&["attribute", "start"]),
        Kind::Number,
    ),
    sig(
        "indent",
        &["width", "first", "blank"],
        0,
        Keywords::Named(&["width", "first", "blank"]),
        Kind::Str,
    ),
    variadic("select", &["test"], 0, ANY, Kind::List),
    variadic("reject", &["test"], 0, ANY, Kind::List),
    variadic("selectattr", &["attribute", "test"], 1, ANY, Kind::List),
    variadic("rejectattr", &["attribute", "test"], 1, ANY, Kind::List),
    variadic("map", &["filter"], 0, ANY, Kind::List),
    sig(
        "groupby",
        &["attribute"],
        1,
        Keywords::Named(&["attribute", "default", "case_sensitive"]),
        Kind::List,
    ),
    sig(
        "unique",
        &[],
        0,
        Keywords::Named(&["attribute", "case_sensitive"]),
        Kind::List,
    ),
    variadic("chain", &[], 0, NONE, Kind::List),
    variadic("zip", &[], 0, NONE, Kind::List),
    sig("pprint", &[], 0, NONE, Kind::Str),
    variadic("format", &[], 0, ANY, Kind::Str),
    sig(
        "tojson",
        &["indent"],
        0,
        Keywords::Named(&["indent"]),
        Kind::Str,
    ),
    sig("regex_search", &["pattern"], 1, NONE, Kind::Data),
    sig("regex_capture", &["pattern", "group"], 1, NONE, Kind::Str),
    sig("quote", &[], 0, NONE, Kind::Str),
    sig("from_json", &[], 0, NONE, Kind::Data),
    sig("to_json", &[], 0, NONE, Kind::Str),
    sig("b64encode", &[], 0, NONE, Kind::Str),
    sig("b64decode", &[], 0, NONE, Kind::Str),
    sig("strftime", &["format"], 1, NONE, Kind::Str),
];

const fn test(name: &'static str, params: &'static [&'static str]) -> Signature {
    sig(name, params, params.len(), NONE, Kind::Bool)
}

/// Every test (`value is name`), all minijinja's builtins.
pub const TESTS: &[Signature] = &[
    test("undefined", &[]),
    test("defined", &[]),
    test("none", &[]),
    test("safe", &[]),
    test("escaped", &[]),
    test("boolean", &[]),
    test("odd", &[]),
    test("even", &[]),
    test("divisibleby", &["num"]),
    test("number", &[]),
    test("integer", &[]),
    test("int", &[]),
    test("float", &[]),
    test("string", &[]),
    test("sequence", &[]),
    test("iterable", &[]),
    test("mapping", &[]),
    test("startingwith", &["prefix"]),
    test("endingwith", &["suffix"]),
    test("lower", &[]),
    test("upper", &[]),
    test("sameas", &["other"]),
    test("eq", &["other"]),
    test("equalto", &["other"]),
    test("==", &["other"]),
    test("ne", &["other"]),
    test("!=", &["other"]),
    test("lt", &["other"]),
    test("lessthan", &["other"]),
    test("<", &["other"]),
    test("le", &["other"]),
    test("<=", &["other"]),
    test("gt", &["other"]),
    test("greaterthan", &["other"]),
    test(">", &["other"]),
    test("ge", &["other"]),
    test(">=", &["other"]),
    test("in", &["container"]),
    test("true", &[]),
    test("false", &[]),
    test("filter", &[]),
    test("test", &[]),
];

/// Every global function: minijinja's builtins and the engine's `now`.
pub const FUNCTIONS: &[Signature] = &[
    sig("now", &[], 0, NONE, Kind::Str),
    sig("range", &["start", "stop", "step"], 1, NONE, Kind::List),
    sig("dict", &["mapping"], 0, ANY, Kind::Map),
    sig("namespace", &["mapping"], 0, ANY, Kind::Unknown),
    variadic("debug", &[], 0, ANY, Kind::Str),
];

/// The methods of `loop`, the only value with methods.
pub const LOOP_METHODS: &[Signature] = &[
    variadic("cycle", &["value"], 1, NONE, Kind::Data),
    variadic("changed", &[], 0, NONE, Kind::Bool),
];

/// A signature by name.
pub fn find(table: &'static [Signature], name: &str) -> Option<&'static Signature> {
    table.iter().find(|s| s.name == name)
}

/// The names of a table, for "did you mean".
pub fn names(table: &'static [Signature]) -> impl Iterator<Item = &'static str> {
    table.iter().map(|s| s.name)
}

/// What to write instead of a Python method that values do not have here, for a receiver and
/// its arguments as written (`result.stdout`, `["' '"]`). `None`: not a method anyone expects.
pub fn instead_of_method(method: &str, receiver: &str, args: &[&str]) -> Option<String> {
    let all = args.join(", ");
    let with_args = |name: &str| {
        if args.is_empty() {
            format!("`{receiver} | {name}`")
        } else {
            format!("`{receiver} | {name}({all})`")
        }
    };
    let first = args.first().copied().unwrap_or("…");
    Some(match method {
        "split" => format!("use the `split` filter: {}", with_args("split")),
        "splitlines" => format!("use the `lines` filter: `{receiver} | lines`"),
        "strip" => format!("use the `trim` filter: {}", with_args("trim")),
        "lstrip" | "rstrip" => format!(
            "use the `trim` filter (it trims both ends): {}",
            with_args("trim")
        ),
        "upper" | "lower" | "title" | "capitalize" => {
            format!("use the `{method}` filter: `{receiver} | {method}`")
        }
        "replace" => format!("use the `replace` filter: {}", with_args("replace")),
        "startswith" => format!("use the `startingwith` test: `{receiver} is startingwith({all})`"),
        "endswith" => format!("use the `endingwith` test: `{receiver} is endingwith({all})`"),
        "islower" | "isupper" => format!("use the `{0}` test: `{receiver} is {0}`", &method[2..]),
        "isdigit" | "isnumeric" | "isdecimal" => format!(
            "match it: `{receiver} | regex_search('^[0-9]+$')` (none when it is not all digits)"
        ),
        "find" | "index" | "rfind" | "rindex" | "__contains__" => {
            format!("to test whether it contains something, use `in`: `{first} in {receiver}`")
        }
        "join" => format!("use the `join` filter on the list: `{first} | join({receiver})`"),
        "format" => format!(
            "use the `format` filter (printf-style, `%s`): {}",
            with_args("format")
        ),
        "items" => format!("use the `items` filter: `{receiver} | items`"),
        "keys" => format!("a map lists its keys: `{receiver} | list`"),
        "values" => format!("`{receiver} | items | map(attribute=1) | list`"),
        "get" => match args {
            [key, default] => format!("`{receiver}[{key}] | default({default})`"),
            _ => format!("index it: `{receiver}[{first}]`, or `{receiver}[{first}] | default(…)`"),
        },
        "count" => format!("`{receiver} | select('eq', {first}) | list | length`"),
        "sort" => format!("use the `sort` filter: `{receiver} | sort`"),
        "reverse" => format!("use the `reverse` filter: `{receiver} | reverse`"),
        "append" | "extend" | "insert" | "remove" | "pop" | "clear" | "update" | "setdefault"
        | "add" | "discard" => format!(
            "values cannot be changed in a template; build a new one, e.g. `{receiver} + [{first}]`"
        ),
        "copy" => format!("values are never changed in a template: use `{receiver}` itself"),
        "len" | "__len__" => format!("use the `length` filter: `{receiver} | length`"),
        _ => return None,
    })
}

/// What to use for a filter that does not exist, when the name is a well-known one from elsewhere.
pub fn instead_of_filter(name: &str) -> Option<&'static str> {
    Some(match name {
        "strip" | "lstrip" | "rstrip" => "use the `trim` filter",
        "splitlines" => "use the `lines` filter",
        "len" | "size" => "use the `length` filter",
        "json" | "to_nice_json" | "jsonify" => "use the `to_json` filter",
        "from_json_string" | "parse_json" | "json_decode" => "use the `from_json` filter",
        "b64_encode" | "base64encode" | "base64" => "use the `b64encode` filter",
        "b64_decode" | "base64decode" => "use the `b64decode` filter",
        "shell_quote" | "shquote" | "quoted" => "use the `quote` filter",
        "regex" | "regex_match" | "regex_findall" => {
            "use `regex_search(pattern)` (the first match) or `regex_capture(pattern, group)`"
        }
        "date" | "datetime" | "to_datetime" => "use the `strftime(format)` filter",
        _ => return None,
    })
}

/// What to use for a test that does not exist, when the name is a well-known one from elsewhere.
pub fn instead_of_test(name: &str) -> Option<&'static str> {
    Some(match name {
        "startswith" | "starting_with" => "use `is startingwith(prefix)`",
        "endswith" | "ending_with" => "use `is endingwith(suffix)`",
        "contains" | "containing" => "use `in`: `needle in value`",
        "match" | "search" | "regex" | "matching" => {
            "use `value | regex_search(pattern)`, which is none when nothing matches"
        }
        "empty" => "use `value | length == 0`",
        "equal" | "equals" => "use `is eq(other)` or `==`",
        "list" | "array" => "use `is sequence`",
        "dict" | "map" | "object" => "use `is mapping`",
        "bool" => "use `is boolean`",
        "null" | "nil" => "use `is none`",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use minijinja::ErrorKind;

    use super::*;
    use crate::template;

    /// Values a filter or test may be applied to, so that one of them suits each.
    const VALUES: [&str; 6] = ["'a b'", "[1, 2]", "{'a': 1}", "3", "1.5", "true"];

    /// Argument lists of `n` arguments of several shapes, so that one of them converts for every
    /// signature and the count is what decides.
    fn argument_lists(n: usize) -> Vec<String> {
        let shapes: [fn(usize) -> &'static str; 7] = [
            |_| "1",
            |_| "'a'",
            |_| "true",
            |i| if i % 2 == 0 { "1" } else { "'a'" },
            |i| if i % 2 == 0 { "'a'" } else { "1" },
            |i| if i == 0 { "1" } else { "true" },
            |i| if i == 0 { "'a'" } else { "'eq'" },
        ];
        shapes
            .iter()
            .map(|shape| (0..n).map(shape).collect::<Vec<_>>().join(", "))
            .collect()
    }

    /// The error kinds that calling with `n` arguments gives, over every value and shape.
    fn outcomes(call: &dyn Fn(&str, &str) -> String, n: usize) -> Vec<Option<ErrorKind>> {
        let env = template::environment();
        let mut kinds = Vec::new();
        for value in VALUES {
            for args in argument_lists(n) {
                let source = call(value, &args);
                let result = env
                    .compile_expression(&source)
                    .and_then(|e| e.eval(minijinja::Value::from(())));
                kinds.push(result.err().map(|e| e.kind()));
            }
        }
        kinds
    }

    /// One fewer argument than required is missing one, one more than allowed is one too many,
    /// and every count in between is neither.
    fn check_arity(table: &'static [Signature], call: &dyn Fn(&str, &str, &str) -> String) {
        for s in table {
            let at = |n| outcomes(&|value, args| call(s.name, value, args), n);
            if s.required > 0 {
                assert!(
                    at(s.required - 1).contains(&Some(ErrorKind::MissingArgument)),
                    "{} requires fewer than {} arguments",
                    s.name,
                    s.required
                );
            }
            // A variadic callable's further arguments go to another (the test `select` applies),
            // which may need some of its own: only the required ones are checked here.
            let most = if s.variadic {
                s.required
            } else {
                s.params.len()
            };
            for n in s.required..=most {
                let kinds = at(n);
                assert!(
                    !kinds.contains(&Some(ErrorKind::MissingArgument))
                        && !kinds.contains(&Some(ErrorKind::TooManyArguments)),
                    "{} does not take {n} arguments: {kinds:?}",
                    s.name
                );
            }
            if !s.variadic {
                assert!(
                    at(most + 1).contains(&Some(ErrorKind::TooManyArguments)),
                    "{} takes more than {most} arguments",
                    s.name
                );
            }
        }
    }

    fn with_args(name: &str, args: &str) -> String {
        if args.is_empty() {
            name.to_owned()
        } else {
            format!("{name}({args})")
        }
    }

    fn is_true(source: &str) -> bool {
        template::eval(source, &minijinja::Value::from(()))
            .unwrap_or_else(|e| panic!("{source}: {e}"))
            .is_true()
    }

    #[test]
    fn every_filter_exists_and_takes_the_arguments_its_signature_says() {
        for s in FILTERS {
            assert!(is_true(&format!("{:?} is filter", s.name)), "{}", s.name);
        }
        check_arity(FILTERS, &|name, value, args| {
            format!("{value} | {}", with_args(name, args))
        });
    }

    #[test]
    fn every_test_exists_and_takes_the_arguments_its_signature_says() {
        for s in TESTS {
            assert!(is_true(&format!("{:?} is test", s.name)), "{}", s.name);
        }
        // Operator-named tests are only reachable through `select`.
        check_arity(TESTS, &|name, value, args| {
            if name.chars().all(|c| c.is_ascii_alphabetic()) {
                format!("{value} is {}", with_args(name, args))
            } else if args.is_empty() {
                format!("[{value}] | select({name:?}) | list")
            } else {
                format!("[{value}] | select({name:?}, {args}) | list")
            }
        });
    }

    #[test]
    fn the_functions_are_the_environments_globals() {
        let mut globals: Vec<&str> = template::environment().globals().map(|(n, _)| n).collect();
        globals.sort_unstable();
        let mut listed: Vec<&str> = names(FUNCTIONS).collect();
        listed.sort_unstable();
        assert_eq!(globals, listed);
        check_arity(FUNCTIONS, &|name, _, args| format!("{name}({args})"));
    }

    #[test]
    fn values_have_no_methods_and_loop_has_two() {
        let ctx = template::to_value(&serde_json::json!({"s": "a b", "l": [1], "m": {"k": 1}}));
        for source in ["s.split(' ')", "l.append(2)", "m.items()", "m.keys()"] {
            let err = template::eval(source, &ctx).expect_err(source);
            assert_eq!(err.kind(), ErrorKind::UnknownMethod, "{source}");
        }
        let looped = template::render_text(
            "{% for x in [1, 1, 2] %}{{ loop.cycle('a', 'b') }}{{ loop.changed(x) }} {% endfor %}",
            &ctx,
        )
        .expect("loop methods exist");
        assert_eq!(looped, "aTrue bFalse aTrue ");
    }

    #[test]
    fn the_python_method_hints_are_valid_templates_that_work() {
        let ctx =
            template::to_value(&serde_json::json!({"s": " a b ", "m": {"k": 1}, "l": [1, 2, 1]}));
        let cases = [
            ("split", "s", vec![], "['a', 'b']"),
            ("strip", "s", vec![], "'a b'"),
            ("keys", "m", vec![], "['k']"),
            ("values", "m", vec![], "[1]"),
            ("get", "m", vec!["'x'", "2"], "2"),
            ("count", "l", vec!["1"], "2"),
            ("endswith", "s", vec!["'b '"], "true"),
        ];
        for (method, receiver, args, expected) in cases {
            let hint = instead_of_method(method, receiver, &args).expect(method);
            let code = hint
                .rsplit('`')
                .nth(1)
                .unwrap_or_else(|| panic!("{method}: no code in {hint}"));
            let got = template::eval(&format!("({code}) == {expected}"), &ctx)
                .unwrap_or_else(|e| panic!("{method}: `{code}`: {e}"));
            assert!(got.is_true(), "{method}: `{code}` is not {expected}");
        }
    }

    #[test]
    fn a_usage_shows_optional_arguments_in_brackets() {
        assert_eq!(
            find(FILTERS, "regex_capture").map(Signature::usage),
            Some("regex_capture(pattern[, group])".to_owned())
        );
        assert_eq!(
            find(FILTERS, "upper").map(Signature::usage),
            Some("upper".to_owned())
        );
        assert_eq!(
            find(FILTERS, "select").map(Signature::usage),
            Some("select([test], …)".to_owned())
        );
    }
}
