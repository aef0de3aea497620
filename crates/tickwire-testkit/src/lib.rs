//! tickwire-testkit is the one home of what tests and benches need around
//! the pipeline; only tests and benches depend on it, and most of them
//! `use tickwire_testkit::prelude::*`.
//!
//! - Redis: [`redis()`](redis::redis) and [`cluster()`](redis::cluster)
//!   start a private [`RedisServer`] (from tickwire-sandbox, which the
//!   binary ships for `tickwire demo`) or a [`RedisCluster`] of three
//!   primaries and three replicas; [`redis::redis_cli`] runs redis-cli on it.
//! - The binary: [`tickwire!`] makes its command; [`process`] runs it,
//!   starts `run`, stops it with a signal, reads `health --json`, the
//!   summary and the log.
//! - Inputs: [`config_file`] writes config files (and their `[[feeds]]`
//!   section); [`fixtures`] writes input files and builds Dhan packets;
//!   [`synth`] is the deterministic tick generator; [`ws_server`] a
//!   scripted WebSocket venue on loopback that misbehaves on cue, and
//!   [`rest_server`] the venues' trade-history REST endpoints, faults on cue.
//! - Waiting: [`poll`] polls a condition until it holds, with a deadline,
//!   instead of sleeping.
//! - Reading back: [`read`] key by key, [`snapshot()`] everything a run
//!   wrote (to compare two runs), [`metrics`] the Prometheus endpoint.

pub mod cluster;
pub mod config_file;
pub mod fixtures;
pub mod metrics;
pub mod poll;
pub mod prelude;
pub mod process;
pub mod read;
pub mod redis;
pub mod rest_server;
pub mod snapshot;
pub mod ws_server;

pub use cluster::RedisCluster;
pub use snapshot::{assert_same, equal_within, snapshot, snapshot_cluster, RUN_DBS};

pub use tickwire_sandbox::redis_server;
pub use tickwire_sandbox::synth;
pub use tickwire_sandbox::{RedisServer, RedisServerError as TestkitError};
