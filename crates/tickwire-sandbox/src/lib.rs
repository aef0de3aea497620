//! tickwire-sandbox holds the two pieces of the shipped binary that are not
//! part of the pipeline: [`RedisServer`], a private redis-server on a free
//! loopback port in a temporary directory, stopped on drop (`tickwire demo`);
//! and [`synth`], the deterministic generator of NSE-like ticks behind
//! `tickwire synth` and the bundled sample. Nothing here is test-only:
//! tickwire-testkit re-exports both for the tests and benches.

pub mod redis_server;
pub mod synth;

pub use redis_server::{RedisServer, RedisServerError, TlsFiles};
