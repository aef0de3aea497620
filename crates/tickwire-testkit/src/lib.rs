//! tickwire-testkit holds what tests and benches need around the pipeline:
//! [`ws_server`], a scripted WebSocket server on loopback that misbehaves on
//! cue (feed tests), and, re-exported from tickwire-sandbox (which the binary
//! ships for `tickwire demo` and `tickwire synth`), [`RedisServer`], a private
//! redis-server per test, and [`synth`], the deterministic tick generator;
//! [`snapshot()`] reads back everything a run wrote, to compare two runs;
//! [`metrics::scrape`] reads the Prometheus endpoint; [`RedisCluster`] is a
//! private Redis Cluster of three primaries and three replicas.
//! Only tests and benches depend on this crate.

pub mod cluster;
pub mod metrics;
pub mod snapshot;
pub mod ws_server;

pub use cluster::RedisCluster;
pub use snapshot::{equal_within, snapshot, snapshot_cluster};

pub use tickwire_sandbox::redis_server;
pub use tickwire_sandbox::synth;
pub use tickwire_sandbox::{RedisServer, RedisServerError as TestkitError};
