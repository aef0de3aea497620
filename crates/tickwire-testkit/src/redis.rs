//! Redis for a test: a private server or cluster started (the test fails
//! when redis-server is missing), and redis-cli against one of its DBs.

use std::process::Command;

use tickwire_sandbox::RedisServer;

use crate::cluster::RedisCluster;

/// A private redis-server for this test.
pub fn redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|e| panic!("these tests need a real redis-server: {e}"))
}

/// A private Redis Cluster for this test.
pub fn cluster() -> RedisCluster {
    RedisCluster::start()
        .unwrap_or_else(|e| panic!("these tests need redis-server and redis-cli: {e}"))
}

/// `redis-cli` with `args` on DB `db` of `server`: its stdout, trimmed.
pub fn redis_cli(server: &RedisServer, db: u8, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-u", &format!("{}/{db}", server.url())])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
