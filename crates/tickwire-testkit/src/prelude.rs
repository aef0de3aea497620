//! What most tests use, for one glob import:
//! `use tickwire_testkit::prelude::*;`.

pub use crate::config_file::{config_file, feed_toml};
pub use crate::fixtures::{dhan_full, env_or, write};
pub use crate::metrics::{scrape, try_scrape};
pub use crate::poll::{poll_until, wait_for, wait_until};
pub use crate::process::{
    free_port, health_json, log_of, run, signal, start_run, stop, summary_value, terminate,
    wait_exit,
};
pub use crate::read::{
    assert_ttl, command_calls, field, first_ticks_in, hgetall, keys, ticks_of, ttl, xrange, Entries,
};
pub use crate::redis::{cluster, redis, redis_cli};
pub use crate::snapshot::{assert_same, snapshot, RUN_DBS};
pub use crate::tickwire;
pub use crate::{RedisCluster, RedisServer};
