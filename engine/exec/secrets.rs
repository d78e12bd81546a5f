//! Secrets: resolved once at run start, handed to templates, and masked as `***` in every text
//! the engine emits.

use std::path::Path;

use serde_json::{Map, Value};

use crate::spec::{Runbook, SecretSource};

/// Why a secret could not be resolved (before anything runs).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// A value too short to be masked in output without hiding unrelated text.
    #[error(
        "secret `{name}` is {chars} character{} long: too short to be masked in output (every occurrence of it would be hidden, and it would still be guessable); use at least {MIN_SECRET_LEN}",
        if *chars == 1 { "" } else { "s" }
    )]
    TooShort {
        /// The secret.
        name: String,
        /// Its length.
        chars: usize,
    },
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
    /// The environment variables read.
    sources: Vec<String>,
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
        Self::resolve_needed(runbooks, &|_| true)
    }

    /// Reads the declared secrets of the runbooks: one that `needed` names must be readable
    /// (all failures are returned); any other is kept when it can be read, so that its value is
    /// still masked, and left out otherwise.
    pub fn resolve_needed<'a>(
        runbooks: impl IntoIterator<Item = &'a Runbook>,
        needed: &dyn Fn(&str) -> bool,
    ) -> Result<Self, Vec<SecretError>> {
        let mut values = Vec::new();
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        for runbook in runbooks {
            let base = runbook.file.path.parent().unwrap_or_else(|| Path::new("."));
            sources.extend(env_sources([runbook]));
            for secret in &runbook.secrets {
                let read = match &secret.source {
                    SecretSource::Env(var) => {
                        std::env::var(var).map_err(|_| SecretError::MissingEnv {
                            name: secret.name.clone(),
                            var: var.clone(),
                        })
                    }
                    SecretSource::File(path) => {
                        let full = base.join(path);
                        std::fs::read_to_string(&full)
                            .map(|v| v.trim_end_matches(['\n', '\r']).to_owned())
                            .map_err(|source| SecretError::File {
                                name: secret.name.clone(),
                                path: full.display().to_string(),
                                source,
                            })
                    }
                };
                let chars = read.as_ref().map_or(0, |v| v.chars().count());
                let short = chars > 0 && chars < MIN_SECRET_LEN;
                match (read, needed(&secret.name)) {
                    (Ok(_), true) if short => errors.push(SecretError::TooShort {
                        name: secret.name.clone(),
                        chars,
                    }),
                    (Ok(v), _) if !short => values.push((secret.name.clone(), v)),
                    (Err(e), true) => errors.push(e),
                    (Ok(_) | Err(_), _) => {}
                }
            }
        }
        if errors.is_empty() {
            Ok(Self { values, sources })
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

    /// The environment variables secrets were read from: kept from the processes steps start.
    pub fn sources(&self) -> Vec<String> {
        self.sources.clone()
    }

    /// A masker for these values.
    pub fn masker(&self) -> Masker {
        Masker::new(self.values.iter().map(|(_, v)| v.as_str()))
    }
}

/// The environment variables the runbooks' secrets are read from (`secrets: {x: {env: VAR}}`).
pub fn env_sources<'a>(runbooks: impl IntoIterator<Item = &'a Runbook>) -> Vec<String> {
    runbooks
        .into_iter()
        .flat_map(|runbook| &runbook.secrets)
        .filter_map(|secret| match &secret.source {
            SecretSource::Env(var) => Some(var.clone()),
            SecretSource::File(_) => None,
        })
        .collect()
}

/// Keeps the environment variables secrets were read from (`sources`) out of a process the
/// engine starts: a step's command (which sets one in its `env` when it needs it), and the
/// engine's own helpers (ssh, tar, git, the dead man's switch), which never need one.
pub fn withhold(process: &mut std::process::Command, sources: &[String]) {
    for var in sources {
        process.env_remove(var);
    }
}

/// The shortest secret value that can be masked meaningfully: a shorter one would hide every
/// occurrence of its characters in every line the engine prints or stores.
pub const MIN_SECRET_LEN: usize = 4;

/// Replaces every secret value in a text by `***`, in every form it takes in output: as is,
/// each line of a multi-line value, and its JSON-escaped, URL-encoded, shell-quoted and base64
/// forms.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    /// One alternation of every form (longest first); `None` without secrets.
    pattern: Option<regex::Regex>,
}

impl Masker {
    /// A masker for these values (empty ones are ignored).
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut forms: Vec<String> = Vec::new();
        for value in values.into_iter().filter(|v| !v.is_empty()) {
            forms.extend(forms_of(value));
        }
        forms.retain(|f| f.chars().count() >= MIN_SECRET_LEN);
        // Longest first, so a form that contains another is masked whole.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        if forms.is_empty() {
            return Self { pattern: None };
        }
        let alternation: Vec<String> = forms.iter().map(|f| regex::escape(f)).collect();
        let pattern = regex::RegexBuilder::new(&alternation.join("|"))
            .size_limit(64 << 20)
            .build()
            .ok();
        Self { pattern }
    }

    /// The text with every secret value replaced.
    pub fn mask(&self, text: &str) -> String {
        match &self.pattern {
            Some(pattern) if pattern.is_match(text) => {
                pattern.replace_all(text, "***").into_owned()
            }
            _ => text.to_owned(),
        }
    }

    /// Whether the text holds a secret value, in any of its forms.
    pub fn finds(&self, text: &str) -> bool {
        self.pattern.as_ref().is_some_and(|p| p.is_match(text))
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

/// Every form a secret value can take in what a step prints or the engine shows.
fn forms_of(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    // A multi-line value (a PEM key) is printed, and masked, line by line.
    forms.extend(
        value
            .lines()
            .map(|l| l.trim_end_matches('\r').to_owned())
            .filter(|l| !l.trim().is_empty()),
    );
    let json = serde_json::to_string(value).unwrap_or_default();
    forms.push(json.trim_matches('"').to_owned());
    forms.push(url_encoded(value, false));
    forms.push(url_encoded(value, true));
    // As a URL parser leaves it in each part of a URL it prints (WHATWG percent-encode sets):
    // `http://h/x?k=a\b c` reads back as `…?k=a\b%20c`.
    for set in [URL_QUERY, URL_PATH, URL_FRAGMENT, URL_USERINFO] {
        forms.push(percent_encoded(value, set));
    }
    forms.push(crate::template::shell_quote(value));
    forms.extend(base64_forms(value));
    forms
}

/// The printable ASCII characters a URL parser percent-encodes in a query (special schemes).
const URL_QUERY: &str = " \"#<>'";
/// … in a path.
const URL_PATH: &str = " \"#<>?`{}";
/// … in a fragment.
const URL_FRAGMENT: &str = " \"<>`";
/// … in a user name or password.
const URL_USERINFO: &str = " \"#<>?`{}/:;=@[\\]^|";

/// Percent-encoding of the bytes in `set`, of controls and of everything not ASCII.
fn percent_encoded(value: &str, set: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_graphic() && !set.as_bytes().contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-encoding as URLs carry it (`form`: spaces as `+`).
fn url_encoded(value: &str, form: bool) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' if form => out.push('+'),
            _ => {
                let _ = std::fmt::Write::write_fmt(&mut out, format_args!("%{byte:02X}"));
            }
        }
    }
    out
}

/// The value's base64 as it appears wherever it starts in a longer encoded text: its three
/// alignments, without the characters shared with what comes before or after.
fn base64_forms(value: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut forms = Vec::new();
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ] {
        for shift in 0..3 {
            let mut bytes = vec![0u8; shift];
            bytes.extend_from_slice(value.as_bytes());
            let encoded = engine.encode(&bytes);
            let encoded = encoded.trim_end_matches('=');
            // Leading characters mix in the bytes before it; the last one those after it.
            let skip = if shift == 0 { 0 } else { shift + 1 };
            let stable: String = encoded.chars().skip(skip).collect();
            let stable = if stable.chars().count() > 1 {
                stable[..stable.len() - 1].to_owned()
            } else {
                stable
            };
            forms.push(stable);
        }
        forms.push(engine.encode(value.as_bytes()));
    }
    forms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_longest_first() {
        let m = Masker::new(["hunter22", "hunter"]);
        assert_eq!(m.mask("pw=hunter22 and hunter"), "pw=*** and ***");
    }

    #[test]
    fn a_multi_line_secret_is_masked_line_by_line() {
        let key = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAAS\n-----END KEY-----";
        let m = Masker::new([key]);
        assert_eq!(m.mask("MIIEvQIBADANBgkqhkiG9w0BAQEFAAS"), "***");
        assert_eq!(m.mask(key), "***");
    }

    #[test]
    fn encoded_forms_are_masked() {
        use base64::Engine as _;
        let secret = "Sp3c\"ial\\x sp ace";
        let m = Masker::new([secret]);
        for form in [
            "k=Sp3c%22ial%5Cx%20sp%20ace".to_owned(),
            "k=Sp3c%22ial%5Cx+sp+ace".to_owned(),
            // As reqwest prints a URL it could not reach.
            "http://127.0.0.1:9/x?k=Sp3c%22ial\\x%20sp%20ace".to_owned(),
            r#"{"k":"Sp3c\"ial\\x sp ace"}"#.to_owned(),
            crate::template::shell_quote(secret),
            base64::engine::general_purpose::STANDARD.encode(secret),
            base64::engine::general_purpose::STANDARD.encode(format!("user:{secret}")),
            base64::engine::general_purpose::STANDARD.encode(format!("ab{secret}cd")),
        ] {
            let masked = m.mask(&form);
            assert!(masked.contains("***"), "{form} → {masked}");
            assert!(!masked.contains("ial"), "{form} → {masked}");
        }
    }

    #[test]
    fn a_short_value_is_not_masked_character_by_character() {
        let m = Masker::new(["x"]);
        assert_eq!(
            m.mask("pgrep -x nginx || exit 0"),
            "pgrep -x nginx || exit 0"
        );
    }
}
