//! The hosts of `on:`: how a step fans out over them, and what each is called in node ids
//! (`restart[es-1]`, `restart[core@10.0.0.7:2222]`).

use serde_json::Value;

use super::node_id::ItemKey;

/// The SSH port a destination has unless it says otherwise.
pub const DEFAULT_PORT: u16 = 22;

/// A port written as text (`"2222"`): a number from 1 to 65535.
pub fn port_of(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|p| *p > 0)
}

/// What a destination reached on `port` is called: itself, with `:port` when the port is not
/// the default (`deploy@10.0.0.7:2222`).
pub fn destination_key(destination: &str, port: Option<u16>) -> String {
    match port {
        Some(p) if p != DEFAULT_PORT => format!("{destination}:{p}"),
        _ => destination.to_owned(),
    }
}

/// What a host of `on:` is called: its name (a declared host or a destination as written), or
/// for a map `{ssh, port, …}` its `ssh` with `:port` when the port is not the default.
pub fn key_of(spec: &Value) -> Result<String, String> {
    let key = match spec {
        Value::String(s) => s.trim().to_owned(),
        Value::Object(map) => {
            let ssh = match map.get("ssh") {
                Some(Value::String(s)) => s.trim().to_owned(),
                _ => {
                    return Err(format!(
                        "a host map in `on:` needs `ssh: \"[user@]address\"`, got {spec}"
                    ));
                }
            };
            match map.get("port") {
                None | Some(Value::Null) => ssh,
                Some(port) => {
                    let number = match port {
                        Value::Number(n) => port_of(&n.to_string()),
                        Value::String(s) => port_of(s),
                        _ => None,
                    }
                    .ok_or_else(|| format!("`port: {port}` of host `{ssh}` is not a port"))?;
                    destination_key(&ssh, Some(number))
                }
            }
        }
        other => {
            return Err(format!(
                "a host in `on:` is a host name, an SSH destination or a map {{ssh, port, identity_file, options}}, got {other}"
            ));
        }
    };
    if ItemKey::is_valid_host(&key) {
        Ok(key)
    } else {
        Err(format!("`{key}` is not a host name or an SSH destination"))
    }
}

/// Every host's key, in order; the same host twice is an error.
pub fn keys_of(specs: &[Value]) -> Result<Vec<String>, String> {
    let mut keys: Vec<String> = Vec::with_capacity(specs.len());
    for spec in specs {
        let key = key_of(spec)?;
        if keys.contains(&key) {
            return Err(format!(
                "host `{key}` is twice in `on:`; each host is one node of the fan-out"
            ));
        }
        keys.push(key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn hosts_are_named_by_name_destination_and_port() {
        assert_eq!(key_of(&json!("es-1")).unwrap(), "es-1");
        assert_eq!(
            key_of(&json!({"ssh": "core@10.0.0.7", "port": 2222})).unwrap(),
            "core@10.0.0.7:2222"
        );
        assert_eq!(
            key_of(&json!({"ssh": "core@10.0.0.7", "port": 22})).unwrap(),
            "core@10.0.0.7"
        );
        assert!(key_of(&json!(3)).is_err());
        assert!(key_of(&json!({"port": 22})).is_err());
        assert!(key_of(&json!("a b")).is_err());
        assert!(keys_of(&[json!("a"), json!("a")]).is_err());
    }
}
