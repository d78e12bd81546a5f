//! Params: `--set k=v` and `--params FILE.yaml`, typed by the runbook's declarations and
//! checked against their `enum` and `pattern` before anything runs.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::diagnostic::Diagnostic;
use crate::spec::node::NodeKind;
use crate::spec::{Param, ParamType, Runbook, SourceFile};

/// Why params could not be resolved; each names the param.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// `--set` without `=`.
    #[error("`--set {text}` is not `name=value`")]
    Malformed {
        /// The argument as given.
        text: String,
    },
    /// A name the runbook does not declare.
    #[error("unknown param `{name}`{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Unknown {
        /// The name as given.
        name: String,
        /// A hint (did you mean / declared names).
        hint: Option<String>,
    },
    /// A value of the wrong type.
    #[error("param `{name}` is {article} {expected}: {problem}")]
    Type {
        /// The param.
        name: String,
        /// a / an.
        article: &'static str,
        /// Its declared type.
        expected: &'static str,
        /// What was wrong with the value.
        problem: String,
    },
    /// A required param without a value.
    #[error("missing required param `{name}`{}; pass `--set {name}=…`", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Missing {
        /// The param.
        name: String,
        /// Its description.
        description: Option<String>,
    },
    /// A value of the right type that the param does not take (`enum`, `pattern`).
    #[error("param `{name}`{}: {problem}", given.as_ref().map(|g| format!(" ({g})")).unwrap_or_default())]
    Refused {
        /// The param.
        name: String,
        /// How it was given (`--set env=prod`), when that is not a file.
        given: Option<String>,
        /// Why it is refused.
        problem: String,
    },
    /// A value in a `--params` file that is refused or of the wrong type: where it is written.
    #[error("{0}")]
    InFile(FileMistake),
    /// A params file that could not be read or parsed.
    #[error("failed to read params file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// A mistake in a `--params` file, located at the value (compared by place and message).
#[derive(Debug, Clone)]
pub struct FileMistake(pub Box<Diagnostic>);

impl PartialEq for FileMistake {
    fn eq(&self, other: &Self) -> bool {
        self.0.location() == other.0.location() && self.0.message == other.0.message
    }
}

impl Eq for FileMistake {}

impl std::fmt::Display for FileMistake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.location(), self.0.message)
    }
}

/// Where values come from, in increasing precedence: defaults, files, `--set`.
#[derive(Debug, Clone, Default)]
pub struct ParamInput {
    /// `--params FILE` values, already read, in order.
    pub files: Vec<ParamFile>,
    /// `--set name=value` arguments, as typed.
    pub sets: Vec<String>,
}

/// The values of one params file, and the file itself (to point at a value it gets wrong).
#[derive(Debug, Clone, Default)]
pub struct ParamFile {
    /// Param name → value.
    pub values: Map<String, Value>,
    /// The file as read; `None` for values that are not in a file a person wrote (the params a
    /// run keeps).
    pub source: Option<Arc<SourceFile>>,
}

impl From<Map<String, Value>> for ParamFile {
    fn from(values: Map<String, Value>) -> Self {
        Self {
            values,
            source: None,
        }
    }
}

impl ParamFile {
    /// A mistake about param `name` of this file: at its value (`at_name`: at its name) when
    /// the file is known.
    fn mistake(
        &self,
        name: &str,
        message: String,
        label: &str,
        hint: Option<String>,
        at_name: bool,
    ) -> ParamError {
        let Some(source) = &self.source else {
            return ParamError::Refused {
                name: name.to_owned(),
                given: None,
                problem: message,
            };
        };
        let span = crate::spec::node::parse(source)
            .ok()
            .and_then(|root| match root.kind {
                NodeKind::Map(entries) => entries
                    .into_iter()
                    .find(|(k, _)| k.scalar_text() == name)
                    .map(|(k, v)| if at_name { k.span } else { v.span }),
                _ => None,
            })
            .unwrap_or_default();
        let text = if at_name {
            message
        } else {
            format!("param `{name}`: {message}")
        };
        let d = Diagnostic::new(source, span, text)
            .label(label)
            .maybe_hint(hint);
        ParamError::InFile(FileMistake(Box::new(d)))
    }
}

impl ParamInput {
    /// Reads a `--params` file (YAML or JSON mapping).
    pub fn read_file(path: &Path) -> Result<ParamFile, ParamError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ParamError::File {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        let source = Some(SourceFile::new(path, text.clone()));
        match serde_saphyr::from_str::<Value>(&text) {
            Ok(Value::Object(values)) => Ok(ParamFile { values, source }),
            Ok(Value::Null) => Ok(ParamFile {
                values: Map::new(),
                source,
            }),
            Ok(_) => Err(ParamError::File {
                path: shown,
                reason: "expected a mapping of param names to values".into(),
            }),
            Err(e) => Err(ParamError::File {
                path: shown,
                reason: e.to_string().lines().next().unwrap_or_default().to_owned(),
            }),
        }
    }
}

/// Resolves every declared param: all mistakes are returned, not only the first.
pub fn resolve(
    runbook: &Runbook,
    input: &ParamInput,
) -> Result<Map<String, Value>, Vec<ParamError>> {
    let mut errors = Vec::new();
    let mut values = Map::new();
    for param in &runbook.params {
        if let Some(default) = &param.default {
            values.insert(param.name.clone(), default.clone());
        }
    }
    let names: Vec<&str> = runbook.params.iter().map(|p| p.name.as_str()).collect();
    let unknown = |name: &str| ParamError::Unknown {
        name: name.to_owned(),
        hint: crate::spec::suggest::did_you_mean(name, names.iter().copied()).or_else(|| {
            Some(if names.is_empty() {
                "this runbook declares no params".to_owned()
            } else {
                format!("declared: {}", names.join(", "))
            })
        }),
    };
    for file in &input.files {
        for (name, value) in &file.values {
            let Some(p) = runbook.param(name) else {
                errors.push(match unknown(name) {
                    ParamError::Unknown { hint, .. } if file.source.is_some() => file.mistake(
                        name,
                        format!("unknown param `{name}`"),
                        "not declared by the runbook",
                        hint,
                        true,
                    ),
                    other => other,
                });
                continue;
            };
            match check_type(&p.name, p.ty, value.clone()) {
                Ok(v) => match p.refuses(&v) {
                    None => {
                        values.insert(name.clone(), v);
                    }
                    Some(problem) => {
                        errors.push(file.mistake(name, problem, "from --params", takes(p), false));
                    }
                },
                Err(ParamError::Type { problem, .. }) if file.source.is_some() => {
                    let a = if p.ty == ParamType::Int { "an" } else { "a" };
                    errors.push(file.mistake(
                        name,
                        format!("{problem}, not {a} {}", p.ty.name()),
                        &format!("expected {a} {}", p.ty.name()),
                        None,
                        false,
                    ));
                }
                Err(e) => errors.push(e),
            }
        }
    }
    for set in &input.sets {
        let Some((name, text)) = set.split_once('=') else {
            errors.push(ParamError::Malformed { text: set.clone() });
            continue;
        };
        let name = name.trim();
        match runbook.param(name) {
            Some(p) => match parse_text(name, p.ty, text) {
                Ok(v) => match p.refuses(&v) {
                    None => {
                        values.insert(name.to_owned(), v);
                    }
                    Some(problem) => errors.push(ParamError::Refused {
                        name: name.to_owned(),
                        given: Some(format!("--set {set}")),
                        problem,
                    }),
                },
                Err(e) => errors.push(e),
            },
            None => errors.push(unknown(name)),
        }
    }
    for param in &runbook.params {
        if param.required && !values.contains_key(&param.name) {
            errors.push(ParamError::Missing {
                name: param.name.clone(),
                description: param.description.clone(),
            });
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// What a param takes, for a hint: its `enum` values, or its pattern.
fn takes(param: &Param) -> Option<String> {
    if !param.allowed.is_empty() {
        let values: Vec<String> = param.allowed.iter().map(crate::spec::shown_value).collect();
        return Some(format!(
            "`{}` takes one of: {}",
            param.name,
            values.join(", ")
        ));
    }
    param
        .pattern
        .as_ref()
        .map(|p| format!("the whole value must match `{}` (a Rust regex)", p.text))
}

fn type_error(name: &str, ty: ParamType, problem: String) -> ParamError {
    ParamError::Type {
        name: name.to_owned(),
        article: if ty == ParamType::Int { "an" } else { "a" },
        expected: ty.name(),
        problem,
    }
}

/// Checks a structured value (from a file or a default) against a declared type.
pub fn check_type(name: &str, ty: ParamType, value: Value) -> Result<Value, ParamError> {
    if ty.accepts(&value) {
        Ok(value)
    } else {
        Err(type_error(name, ty, format!("got {value}")))
    }
}

/// Parses `--set` text by the declared type: lists and maps are YAML flow (`[1, 2]`, `{a: 1}`).
pub fn parse_text(name: &str, ty: ParamType, text: &str) -> Result<Value, ParamError> {
    match ty {
        ParamType::String => Ok(Value::String(text.to_owned())),
        ParamType::Int => text
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| type_error(name, ty, format!("`{text}` is not a whole number"))),
        ParamType::Bool => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            other => Err(type_error(
                name,
                ty,
                format!("`{other}` is not true or false"),
            )),
        },
        ParamType::List | ParamType::Map => {
            let value = serde_saphyr::from_str::<Value>(text).map_err(|_| {
                type_error(name, ty, format!("`{text}` is not valid YAML flow syntax"))
            })?;
            check_type(name, ty, value).map_err(|_| {
                let example = if ty == ParamType::List {
                    "[a, b]"
                } else {
                    "{key: value}"
                };
                type_error(
                    name,
                    ty,
                    format!("`{text}` is not a {}; write it as `{example}`", ty.name()),
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_values_are_typed_by_the_declaration() {
        assert_eq!(
            parse_text("p", ParamType::Int, "8080"),
            Ok(Value::from(8080))
        );
        assert_eq!(
            parse_text("p", ParamType::List, "[1, 2]"),
            Ok(serde_json::json!([1, 2]))
        );
        assert_eq!(
            parse_text("p", ParamType::Map, "{a: x}"),
            Ok(serde_json::json!({"a": "x"}))
        );
        assert_eq!(
            parse_text("p", ParamType::String, "a=b"),
            Ok(Value::from("a=b"))
        );
        assert!(
            parse_text("port", ParamType::Int, "abc")
                .unwrap_err()
                .to_string()
                .contains("port")
        );
        assert!(parse_text("p", ParamType::List, "abc").is_err());
        assert!(parse_text("p", ParamType::Bool, "yes").is_err());
    }
}
