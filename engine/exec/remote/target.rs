//! A host as ssh reaches it: destination, port, key and options, fully rendered.

use std::path::PathBuf;

pub use crate::plan::hosts::DEFAULT_PORT;

/// A fully rendered SSH target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostTarget {
    /// How the host's node is named (`ID[<key>]`): the host's name, or its destination with
    /// `:port` when the port is not the default ([`HostTarget::key_of`]).
    pub key: String,
    /// `[user@]address`.
    pub destination: String,
    /// The SSH port (`None`: ssh's own default or configuration).
    pub port: Option<u16>,
    /// A private key file (`ssh -i`).
    pub identity_file: Option<PathBuf>,
    /// Extra ssh options (`Name=value`), in order of precedence: a later one wins over an
    /// earlier one of the same name (`defaults.ssh.options`, then the host's own).
    pub options: Vec<String>,
}

impl HostTarget {
    /// A target named `key` reaching `destination` with ssh's defaults.
    pub fn new(key: impl Into<String>, destination: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            destination: destination.into(),
            port: None,
            identity_file: None,
            options: Vec::new(),
        }
    }

    /// An ad-hoc target (a destination that is not a declared host), named by
    /// [`HostTarget::key_of`].
    pub fn ad_hoc(destination: impl Into<String>, port: Option<u16>) -> Self {
        let destination = destination.into();
        Self {
            key: Self::key_of(&destination, port),
            port,
            ..Self::new(String::new(), destination)
        }
    }

    /// The key of a destination: itself, with `:port` when the port is not the default
    /// (`deploy@10.0.0.7:2222`).
    pub fn key_of(destination: &str, port: Option<u16>) -> String {
        crate::plan::hosts::destination_key(destination, port)
    }

    /// The same target on another port.
    #[must_use]
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The same target with a private key file.
    #[must_use]
    pub fn with_identity_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity_file = Some(path.into());
        self
    }

    /// The same target with one more ssh option (`Name=value`), winning over earlier ones.
    #[must_use]
    pub fn with_option(mut self, option: impl Into<String>) -> Self {
        self.options.push(option.into());
        self
    }

    /// How a person reads it: the key, with the destination when the key is a declared name
    /// (`store: core@172.17.8.100`).
    pub fn label(&self) -> String {
        let plain = Self::key_of(&self.destination, self.port);
        if self.key == plain || self.key.is_empty() {
            plain
        } else {
            format!("{}: {plain}", self.key)
        }
    }

    /// The address part of the destination (without `user@`).
    pub fn address(&self) -> &str {
        self.destination
            .rsplit_once('@')
            .map_or(self.destination.as_str(), |(_, a)| a)
    }

    /// Why ssh could not be given this target, if it cannot: a destination or option that ssh
    /// would read as a command-line flag, or one that is empty.
    pub fn problem(&self) -> Option<String> {
        if self.destination.is_empty() {
            return Some("an empty SSH destination".to_owned());
        }
        if self.destination.starts_with('-') || self.destination.chars().any(char::is_whitespace) {
            return Some(format!(
                "`{}` is not an SSH destination ([user@]address)",
                self.destination
            ));
        }
        self.options
            .iter()
            .find(|o| o.trim().is_empty() || o.starts_with('-'))
            .map(|o| format!("`{o}` is not an ssh option (Name=value)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_the_port_only_when_it_is_not_the_default() {
        assert_eq!(HostTarget::key_of("root@10.0.0.7", None), "root@10.0.0.7");
        assert_eq!(
            HostTarget::key_of("root@10.0.0.7", Some(22)),
            "root@10.0.0.7"
        );
        assert_eq!(
            HostTarget::key_of("root@10.0.0.7", Some(2222)),
            "root@10.0.0.7:2222"
        );
        assert_eq!(
            HostTarget::ad_hoc("10.0.0.7", Some(2222)).key,
            "10.0.0.7:2222"
        );
    }

    #[test]
    fn destinations_that_ssh_would_read_as_flags_are_refused() {
        assert!(
            HostTarget::ad_hoc("-oProxyCommand=x", None)
                .problem()
                .is_some()
        );
        assert!(HostTarget::ad_hoc("a b", None).problem().is_some());
        assert!(
            HostTarget::ad_hoc("db1", None)
                .with_option("-F/tmp/x")
                .problem()
                .is_some()
        );
        assert_eq!(
            HostTarget::ad_hoc("deploy@db1", None)
                .with_option("StrictHostKeyChecking=no")
                .problem(),
            None
        );
        assert_eq!(HostTarget::ad_hoc("deploy@db1", None).address(), "db1");
    }
}
