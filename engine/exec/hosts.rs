//! Which host a node runs on: its `on:` rendered (or its item of an `on:` list), looked up among
//! the hosts its runbook declares (a called runbook also sees its caller's), with
//! `defaults.ssh` filled in; every field rendered. The result is what the remote layer connects
//! to.

use serde_json::Value;

pub use super::remote::HostTarget;
use super::render::Scope;
use super::step::Failure;
use crate::plan::hosts::{DEFAULT_PORT, key_of, port_of};
use crate::spec::{Host, Runbook, Template};

/// Resolves one host of `on:` (a name, a destination, or a map `{ssh, port, identity_file,
/// options}`). `runbooks` are the node's runbook and then its callers, innermost first.
pub fn resolve(spec: &Value, runbooks: &[&Runbook], scope: &Scope) -> Result<HostTarget, Failure> {
    let key = key_of(spec).map_err(Failure::new)?;
    let mut target = match spec {
        Value::String(name) => match declared(name.trim(), runbooks) {
            Some(host) => from_declared(host, scope)?,
            None => from_destination(name.trim())?,
        },
        Value::Object(map) => from_map(map)?,
        _ => return Err(Failure::new(format!("`{spec}` is not a host"))),
    };
    target.key = key;
    with_defaults(&mut target, runbooks, scope)?;
    Ok(target)
}

fn declared<'r>(name: &str, runbooks: &[&'r Runbook]) -> Option<&'r Host> {
    runbooks
        .iter()
        .find_map(|r| r.hosts.iter().find(|h| h.name == name))
}

fn from_declared(host: &Host, scope: &Scope) -> Result<HostTarget, Failure> {
    let name = &host.name;
    let destination = scope.text(&host.ssh, &format!("hosts.{name}.ssh"))?;
    let port = host
        .port
        .as_ref()
        .map(|p| render_port(p, scope, &format!("hosts.{name}.port")))
        .transpose()?;
    let identity_file = host
        .identity_file
        .as_ref()
        .map(|i| scope.text(i, &format!("hosts.{name}.identity_file")))
        .transpose()?
        .map(Into::into);
    let options = render_options(&host.options, scope, &format!("hosts.{name}.options"))?;
    Ok(HostTarget {
        key: name.clone(),
        destination: destination.trim().to_owned(),
        port,
        identity_file,
        options,
    })
}

/// `[user@]address[:port]`.
fn from_destination(text: &str) -> Result<HostTarget, Failure> {
    let (destination, port) = match text.rsplit_once(':') {
        // An IPv6 address has colons of its own: only `…]:port` or one colon is a port.
        Some((rest, port)) if !rest.contains(':') || rest.ends_with(']') => {
            let port = port_of(port)
                .ok_or_else(|| Failure::new(format!("`{text}`: `{port}` is not a port")))?;
            (
                rest.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                Some(port),
            )
        }
        _ => (text.to_owned(), None),
    };
    Ok(HostTarget {
        key: text.to_owned(),
        destination,
        port,
        identity_file: None,
        options: Vec::new(),
    })
}

fn from_map(map: &serde_json::Map<String, Value>) -> Result<HostTarget, Failure> {
    let text = |key: &str| -> Option<String> {
        map.get(key).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let destination =
        text("ssh").ok_or_else(|| Failure::new("a host map needs `ssh: \"[user@]address\"`"))?;
    let port = text("port")
        .map(|p| port_of(&p).ok_or_else(|| Failure::new(format!("`port: {p}` is not a port"))))
        .transpose()?;
    let options = match map.get("options") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|o| match o {
                Value::String(s) => Ok(s.clone()),
                other => Err(Failure::new(format!("ssh option `{other}` is not text"))),
            })
            .collect::<Result<_, _>>()?,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(Failure::new(format!(
                "`options` of a host is a list of ssh options, got {other}"
            )));
        }
    };
    Ok(HostTarget {
        key: destination.clone(),
        destination,
        port,
        identity_file: text("identity_file").map(Into::into),
        options,
    })
}

/// `defaults.ssh` of the node's runbook, else of its callers': fills what the host left out.
/// Options are kept in the order in which a later one wins: the outermost caller's defaults
/// first, the host's own last.
fn with_defaults(
    target: &mut HostTarget,
    runbooks: &[&Runbook],
    scope: &Scope,
) -> Result<(), Failure> {
    let mut options = Vec::new();
    for runbook in runbooks.iter().rev() {
        options.extend(render_options(
            &runbook.defaults.ssh.options,
            scope,
            "defaults.ssh.options",
        )?);
    }
    options.append(&mut target.options);
    target.options = options;
    for runbook in runbooks {
        let ssh = &runbook.defaults.ssh;
        if target.port.is_none()
            && let Some(p) = &ssh.port
        {
            target.port = Some(render_port(p, scope, "defaults.ssh.port")?);
        }
        if target.identity_file.is_none()
            && let Some(i) = &ssh.identity_file
        {
            target.identity_file = Some(scope.text(i, "defaults.ssh.identity_file")?.into());
        }
    }
    if target.port == Some(DEFAULT_PORT) {
        target.port = None;
    }
    Ok(())
}

fn render_port(template: &Template, scope: &Scope, field: &str) -> Result<u16, Failure> {
    let text = scope.text(template, field)?;
    port_of(&text).ok_or_else(|| {
        Failure::new(format!(
            "`{field}` rendered to `{text}`, which is not a port"
        ))
    })
}

fn render_options(
    options: &[Template],
    scope: &Scope,
    field: &str,
) -> Result<Vec<String>, Failure> {
    options.iter().map(|o| scope.text(o, field)).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn destinations_carry_their_port() {
        let t = from_destination("core@10.0.0.7:2222").unwrap();
        assert_eq!(
            (t.destination.as_str(), t.port),
            ("core@10.0.0.7", Some(2222))
        );
        let t = from_destination("db1.example").unwrap();
        assert_eq!((t.destination.as_str(), t.port), ("db1.example", None));
        let t = from_destination("root@::1").unwrap();
        assert_eq!((t.destination.as_str(), t.port), ("root@::1", None));
        assert!(from_destination("x:notaport").is_err());
    }

    #[test]
    fn an_ad_hoc_map_is_a_host_of_its_own() {
        let map =
            json!({"ssh": "root@127.0.0.3", "port": 2200, "options": ["StrictHostKeyChecking=no"]});
        let Value::Object(map) = map else {
            unreachable!("a JSON object literal")
        };
        let t = from_map(&map).unwrap();
        assert_eq!(t.destination, "root@127.0.0.3");
        assert_eq!(t.port, Some(2200));
        assert_eq!(t.options, ["StrictHostKeyChecking=no"]);
    }
}
