//! Requests sent from a host: a SOCKS proxy over the host's connection, so that an `http` step
//! `on:` a host reaches what the host reaches (a service listening only on its loopback).

use std::time::Duration;

use super::hosts::Remote;
use super::target::HostTarget;
use crate::exec::runtime::Runtime;
use crate::exec::step::Failure;

impl Remote {
    /// The URL of a proxy whose connections leave from `host` (`socks5h`: names are resolved on
    /// the host, so `localhost` is the host's own), connecting first if needed within `timeout`.
    pub async fn proxy_through(
        &self,
        rt: &Runtime,
        host: &HostTarget,
        timeout: Option<Duration>,
    ) -> Result<String, Failure> {
        let connection = self
            .connect_within(rt, host, tokio::time::Instant::now(), timeout)
            .await?;
        let port = connection.socks().await.map_err(Failure::new)?;
        Ok(format!("socks5h://127.0.0.1:{port}"))
    }
}
