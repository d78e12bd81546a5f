//! The seed procedures as drills: real services (`ZooKeeper`, `PostgreSQL`, sshd, S3 with moto) on
//! 127.0.0.1, named fakes for Elasticsearch and devicedb, dry-run snapshots of every runbook,
//! kill-and-resume of the drills, and remote execution over a fleet of hosts served by one sshd.
//! `tests/drills/services.sh install` puts the services in place.
//!
//! Run one drill with `cargo test --test drills drill_zookeeper::`.

#[path = "../common/durable_support.rs"]
mod durable_support;
#[path = "../common/run_support.rs"]
mod run_support;
mod support;

mod drill_deis_store;
mod drill_devicedb;
mod drill_dry_run;
mod drill_elasticsearch;
mod drill_fleet;
mod drill_postgres;
mod drill_resume;
mod drill_zookeeper;
mod remote;
