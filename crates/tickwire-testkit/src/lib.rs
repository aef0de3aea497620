//! tickwire-testkit holds what tests, benches and the demo need around the
//! pipeline: [`RedisServer`], a private redis-server on a free loopback port in
//! a temporary directory, stopped on drop; and [`synth`], the deterministic
//! generator of NSE-like ticks behind `tickwire synth` and the bundled sample.

pub mod redis_server;
pub mod synth;

pub use redis_server::{RedisServer, TestkitError};
