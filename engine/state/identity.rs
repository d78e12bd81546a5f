//! Who drives a run or decides on a step: the OS user and this machine's host name, recorded
//! with the run's processes and approvals (`user@host` when `--as` names nobody).

/// The user name recorded with runs and approvals: `$USER`, `$LOGNAME`, else the account of
/// this process.
pub fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Who decides a manual step when `--as` does not say: `user@host` (the user alone on a machine
/// without a host name).
pub fn default_identity() -> String {
    let user = current_user();
    match host_name() {
        Some(host) => format!("{user}@{host}"),
        None => user,
    }
}

/// This machine's host name, when it has one.
pub fn host_name() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_and_host_are_named() {
        assert!(!current_user().is_empty());
        let host = host_name().expect("a host name");
        assert!(!host.contains('\0'), "{host:?}");
        assert_eq!(default_identity(), format!("{}@{host}", current_user()));
    }
}
