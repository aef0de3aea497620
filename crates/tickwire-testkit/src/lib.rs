//! tickwire-testkit holds what tests, benches and the demo need around the
//! pipeline: [`RedisServer`], a private redis-server on a free loopback port in
//! a temporary directory, stopped on drop; [`ws_server`], a scripted WebSocket
//! server on loopback that misbehaves on cue (feed tests); and [`synth`], the
//! deterministic generator of NSE-like ticks behind `tickwire synth` and the
//! bundled sample.

pub mod redis_server;
pub mod synth;
pub mod ws_server;

pub use redis_server::{RedisServer, TestkitError};
