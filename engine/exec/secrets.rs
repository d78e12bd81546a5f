//! Secrets: resolved once at run start, handed to templates, and masked as `***` in every text
//! the engine emits.

use std::path::Path;

use serde_json::{Map, Value};

use crate::spec::{Runbook, SecretSource};

/// Why a secret could not be resolved (before anything runs).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The environment variable is not set.
    #[error("secret `{name}`: environment variable {var} is not set")]
    MissingEnv {
        /// The secret.
        name: String,
        /// The variable.
        var: String,
    },
    /// The file could not be read.
    #[error("secret `{name}`: failed to read {path}")]
    File {
        /// The secret.
        name: String,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Resolved secret values, by name.
#[derive(Clone, Default)]
pub struct Secrets {
    values: Vec<(String, String)>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.values.iter().map(|(n, _)| n))
            .finish()
    }
}

impl Secrets {
    /// Reads every declared secret of the runbooks; all failures are returned.
    pub fn resolve<'a>(
        runbooks: impl IntoIterator<Item = &'a Runbook>,
    ) -> Result<Self, Vec<SecretError>> {
        let mut values = Vec::new();
        let mut errors = Vec::new();
        for runbook in runbooks {
            let base = runbook.file.path.parent().unwrap_or_else(|| Path::new("."));
            for secret in &runbook.secrets {
                match &secret.source {
                    SecretSource::Env(var) => match std::env::var(var) {
                        Ok(v) => values.push((secret.name.clone(), v)),
                        Err(_) => errors.push(SecretError::MissingEnv {
                            name: secret.name.clone(),
                            var: var.clone(),
                        }),
                    },
                    SecretSource::File(path) => {
                        let full = base.join(path);
                        match std::fs::read_to_string(&full) {
                            Ok(v) => values.push((
                                secret.name.clone(),
                                v.trim_end_matches(['\n', '\r']).to_owned(),
                            )),
                            Err(source) => errors.push(SecretError::File {
                                name: secret.name.clone(),
                                path: full.display().to_string(),
                                source,
                            }),
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(Self { values })
        } else {
            Err(errors)
        }
    }

    /// The values as a template object (`secrets.<name>`).
    pub fn as_map(&self) -> Map<String, Value> {
        self.values
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect()
    }

    /// A masker for these values.
    pub fn masker(&self) -> Masker {
        let mut values: Vec<String> = self
            .values
            .iter()
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .collect();
        // Longest first, so a secret that contains another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Masker { values }
    }
}

/// Replaces every secret value in a text by `***`.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    values: Vec<String>,
}

impl Masker {
    /// The text with every secret value replaced.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), "***");
            }
        }
        out
    }

    /// Masks every string inside a JSON value.
    pub fn mask_value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.mask_value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_longest_first() {
        let m = Masker {
            values: vec!["hunter22".into(), "hunter".into()],
        };
        assert_eq!(m.mask("pw=hunter22 and hunter"), "pw=*** and ***");
    }
}
