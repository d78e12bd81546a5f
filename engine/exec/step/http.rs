//! `http:` — one request; `result` is `{status, headers, body, json}`.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Failure;
use crate::exec::remote::HostTarget;
use crate::exec::runtime::Runtime;

/// A fully rendered request.
#[derive(Debug, Clone)]
pub struct Request {
    /// GET, POST, …
    pub method: String,
    /// The URL.
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub json: Option<Value>,
    /// Text body.
    pub body: Option<String>,
    /// Request timeout.
    pub timeout: Duration,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Accepted statuses (empty: any 2xx).
    pub expect: Vec<u16>,
    /// The host it is sent from (`on:`), over its SSH connection; `None`: from here.
    pub via: Option<HostTarget>,
}

impl Request {
    /// What a person reads: `PUT http://…` and the body.
    pub fn description(&self) -> String {
        let mut out = match &self.via {
            Some(host) => format!("[{}] {} {}", host.label(), self.method, self.url),
            None => format!("{} {}", self.method, self.url),
        };
        for (k, v) in &self.headers {
            let _ = write!(out, "\n  {k}: {v}");
        }
        if let Some(j) = &self.json {
            let _ = write!(out, "\n  {}", serde_json::to_string(j).unwrap_or_default());
        }
        if let Some(b) = &self.body {
            let _ = write!(out, "\n  {b}");
        }
        out
    }
}

/// A request's failure, saying which host it was sent from; a SOCKS failure of a request sent
/// from a host is the host refusing the connection.
fn sent_from(reason: &str, via: Option<&HostTarget>) -> String {
    match via {
        Some(host) if reason.contains("SOCKS") => format!(
            "{reason}: sent from {} over SSH, the host did not open the connection (nothing listens there, or its sshd refuses forwarding: AllowTcpForwarding)",
            host.key
        ),
        Some(host) => format!("{reason} (sent from {})", host.key),
        None => reason.to_owned(),
    }
}

/// Sends the request; a response with an unexpected status is a failure that still has a result.
pub async fn send(rt: &Runtime, req: &Request) -> Result<Value, Failure> {
    let client = match &req.via {
        Some(host) => {
            let proxy = rt.remote.proxy_through(rt, host, Some(req.timeout)).await?;
            rt.http_via(&proxy, req.insecure)
                .map_err(|e| Failure::new(format!("failed to send through {}: {e}", host.key)))?
        }
        None => rt.http(req.insecure).clone(),
    };
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| Failure::new(format!("invalid method {}", req.method)))?;
    let mut builder = client.request(method, &req.url).timeout(req.timeout);
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    if let Some(j) = &req.json {
        builder = builder.json(j);
    } else if let Some(b) = &req.body {
        builder = builder.body(b.clone());
    }
    let response = tokio::select! {
        r = builder.send() => r.map_err(|e| Failure::new(sent_from(&describe(&e), req.via.as_ref())))?,
        () = rt.cancel.cancelled() => return Err(Failure::new("interrupted".to_owned())),
    };
    let status = response.status().as_u16();
    let headers: Map<String, Value> = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                Value::String(v.to_str().unwrap_or_default().to_owned()),
            )
        })
        .collect();
    let body = response
        .text()
        .await
        .map_err(|e| Failure::new(format!("failed to read the response: {e}")))?;
    let mut result = json!({ "status": status, "headers": headers, "body": body });
    // `json` only when the body is JSON: reading it otherwise is an error that says so.
    if let Ok(parsed) = serde_json::from_str::<Value>(&body) {
        result["json"] = parsed;
    }
    let ok = if req.expect.is_empty() {
        (200..300).contains(&status)
    } else {
        req.expect.contains(&status)
    };
    if ok {
        Ok(result)
    } else {
        let wanted = if req.expect.is_empty() {
            "a 2xx status".to_owned()
        } else {
            req.expect
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or ")
        };
        let preview: String = body.chars().take(200).collect();
        Err(Failure::with_result(
            format!("got HTTP {status}, expected {wanted}: {preview}"),
            result,
        ))
    }
}

fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if err.is_timeout() {
        format!("request timed out ({text})")
    } else {
        text
    }
}
