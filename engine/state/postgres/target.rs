//! The database a `--state` URL names: the connection settings tokio-postgres reads, the TLS
//! settings libpq users expect that it does not (`sslmode=verify-ca|verify-full`,
//! `sslrootcert`), `PGPASSWORD` when the URL has no password, and the URL as it may be shown
//! (without its password).

use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use tokio_postgres::config::SslMode;

use super::error::PgError;

/// How long a connection attempt may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// After how long an idle connection is probed by TCP keepalives.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);

/// A database to keep runs in.
#[derive(Debug, Clone)]
pub struct Target {
    /// How to connect.
    pub config: tokio_postgres::Config,
    /// How the server's certificate is checked.
    pub verify: Verify,
    /// Where trusted root certificates come from, when they are checked.
    pub roots: Roots,
    /// The URL without its password, for messages.
    pub display: String,
}

/// How the server's certificate is checked (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Encrypted, not authenticated: `prefer` and `require` (libpq's meaning: any certificate).
    Nothing,
    /// The certificate chains to a trusted root (`verify-ca`, or `require` with `sslrootcert`).
    Chain,
    /// The chain, and the certificate names the host (`verify-full`).
    Full,
}

/// Trusted root certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// A PEM file (`sslrootcert=FILE`; libpq's default `~/.postgresql/root.crt`).
    File(PathBuf),
    /// The system's (`sslrootcert=system`).
    System,
}

/// Whether a `--state` value names a `PostgreSQL` database.
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

impl Target {
    /// Reads a `postgres://` URL.
    pub fn parse(url: &str) -> Result<Self, PgError> {
        if !is_postgres_url(url) {
            return Err(PgError::Url {
                reason: "it must start with postgres:// or postgresql://".to_owned(),
                source: None,
            });
        }
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut verify = None;
        let mut root_file = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match (key, value) {
                ("sslmode", "verify-ca") => verify = Some(Verify::Chain),
                ("sslmode", "verify-full") => verify = Some(Verify::Full),
                ("sslmode", _) => {
                    verify = None;
                    kept.push(pair);
                }
                ("sslrootcert", value) => root_file = Some(percent_decode(value)),
                _ => kept.push(pair),
            }
        }
        let mut rebuilt = base.to_owned();
        if verify.is_some() {
            kept.push("sslmode=require");
        }
        if !kept.is_empty() {
            rebuilt.push('?');
            rebuilt.push_str(&kept.join("&"));
        }
        let mut config =
            tokio_postgres::Config::from_str(&rebuilt).map_err(|source| PgError::Url {
                reason: "the client cannot read it".to_owned(),
                source: Some(source),
            })?;
        if config.get_password().is_none()
            && let Ok(password) = std::env::var("PGPASSWORD")
        {
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if !rebuilt.contains("keepalives_idle") {
            config.keepalives_idle(KEEPALIVE_IDLE);
        }
        if config.get_application_name().is_none() {
            config.application_name("runbook");
        }
        let roots = match root_file.as_deref() {
            Some("system") => Roots::System,
            Some(file) => Roots::File(PathBuf::from(file)),
            None => default_root_file().map_or(Roots::System, Roots::File),
        };
        // libpq: `require` with a root certificate file checks the chain, as `verify-ca` does.
        let verify = verify.unwrap_or(
            if root_file.is_some() && config.get_ssl_mode() == SslMode::Require {
                Verify::Chain
            } else {
                Verify::Nothing
            },
        );
        Ok(Self {
            config,
            verify,
            roots,
            display: without_password(url),
        })
    }
}

/// libpq's default root certificate file, when it exists.
fn default_root_file() -> Option<PathBuf> {
    let file = PathBuf::from(std::env::var_os("HOME")?).join(".postgresql/root.crt");
    file.is_file().then_some(file)
}

/// The URL without its password and options: `postgres://alice@db:5432/runs`.
fn without_password(url: &str) -> String {
    let url = url.split_once('?').map_or(url, |(base, _)| base);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{path}")
}

/// `%2F` → `/`; anything that is not a valid escape is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        assert_eq!(
            without_password("postgres://alice:s3cret@db.example:5432/runs?sslmode=require"),
            "postgres://alice@db.example:5432/runs"
        );
        assert_eq!(
            without_password("postgresql://db/runs"),
            "postgresql://db/runs"
        );
        assert_eq!(
            without_password("postgres://a:b:c@h"),
            "postgres://a@h",
            "a password holding a colon"
        );
    }

    #[test]
    fn libpq_tls_modes_are_read_and_kept_from_the_client() {
        let plain = Target::parse("postgres://alice@127.0.0.1:5433/runs").unwrap();
        assert_eq!(plain.verify, Verify::Nothing);
        assert_eq!(plain.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(plain.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));

        let required = Target::parse("postgres://h/db?sslmode=require").unwrap();
        assert_eq!(required.verify, Verify::Nothing);
        assert_eq!(required.config.get_ssl_mode(), SslMode::Require);

        let full = Target::parse("postgres://h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem")
            .unwrap();
        assert_eq!(full.verify, Verify::Full);
        assert_eq!(full.roots, Roots::File(PathBuf::from("/etc/ca.pem")));
        assert_eq!(full.config.get_ssl_mode(), SslMode::Require);

        let chain = Target::parse("postgres://h/db?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(
            chain.verify,
            Verify::Chain,
            "libpq: require with a root file"
        );

        let system = Target::parse("postgres://h/db?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert_eq!(
            (system.verify, system.roots),
            (Verify::Chain, Roots::System)
        );
    }

    #[test]
    fn what_is_not_a_postgres_url_is_refused_with_the_reason() {
        assert!(is_postgres_url("postgresql://h/db"));
        assert!(!is_postgres_url("/var/lib/runbook"));
        let err = Target::parse("mysql://h/db").unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
        let err = Target::parse("postgres://h/db?sslmode=sometimes").unwrap_err();
        assert!(
            matches!(
                err,
                PgError::Url {
                    source: Some(_),
                    ..
                }
            ),
            "the client's reason is kept: {err:?}"
        );
    }
}
