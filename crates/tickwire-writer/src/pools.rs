//! One fred pool per logical DB. The DB is fixed in each pool's config and
//! SELECTed by fred on every (re)connect; nothing SELECTs at run time.

use std::collections::BTreeMap;
use std::time::Duration;

use fred::prelude::*;
use fred::types::config::{TcpConfig, UnresponsiveConfig};
use tickwire_core::config::{redact_url, RedisConfig};

use crate::WriterError;

/// Connected pools, one per logical DB number, each of `size` connections.
pub struct RedisPools {
    pools: BTreeMap<u8, Pool>,
    size: usize,
}

impl RedisPools {
    /// Connects a pool for each DB in `dbs`. Fails if Redis cannot be reached
    /// (the first connect is not retried); later drops are reconnected with
    /// exponential backoff, and every command has a timeout.
    pub async fn connect(
        cfg: &RedisConfig,
        dbs: impl IntoIterator<Item = u8>,
    ) -> Result<Self, WriterError> {
        let base = Config::from_url(&cfg.url).map_err(|source| WriterError::Url {
            url: redact_url(&cfg.url),
            source,
        })?;
        let command_timeout = Duration::from_millis(cfg.command_timeout_ms);
        let mut wanted: Vec<u8> = dbs.into_iter().collect();
        wanted.sort_unstable();
        wanted.dedup();
        // Every pool dials at once: start-up costs one connect round, not one
        // per DB and connection (a short replay pays it on every file).
        let connects = wanted.into_iter().map(|db| {
            let mut config = base.clone();
            config.database = Some(db);
            config.fail_fast = true;
            async move {
                let pool = Builder::from_config(config)
                    .with_connection_config(|c| {
                        c.connection_timeout = Duration::from_millis(cfg.connect_timeout_ms);
                        c.internal_command_timeout = command_timeout;
                        // In-flight commands are re-sent after a reconnect; every
                        // write tickwire makes is idempotent, so that is safe.
                        c.max_command_attempts = 3;
                        c.unresponsive = UnresponsiveConfig {
                            max_timeout: Some(command_timeout),
                            interval: Duration::from_secs(1),
                        };
                        c.tcp = TcpConfig {
                            nodelay: Some(true),
                            ..Default::default()
                        };
                    })
                    .with_performance_config(|p| {
                        p.default_command_timeout = command_timeout;
                    })
                    .set_policy(ReconnectPolicy::new_exponential(
                        cfg.reconnect_max_attempts,
                        100,
                        u32::try_from(cfg.reconnect_max_delay_ms).unwrap_or(u32::MAX),
                        2,
                    ))
                    .build_pool(cfg.pool_size)
                    .map_err(|source| WriterError::Connect {
                        url: redact_url(&cfg.url),
                        db,
                        source,
                    })?;
                pool.init().await.map_err(|source| WriterError::Connect {
                    url: redact_url(&cfg.url),
                    db,
                    source,
                })?;
                Ok((db, pool))
            }
        });
        let mut pools = BTreeMap::new();
        let mut first_error = None;
        // All of them finish (none is left dialling); the first failure, in DB
        // order, is the one reported.
        for connected in futures_util::future::join_all(connects).await {
            match connected {
                Ok((db, pool)) => {
                    pools.insert(db, pool);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            for pool in pools.values() {
                let _ = pool.quit().await;
            }
            return Err(e);
        }
        Ok(Self {
            pools,
            size: cfg.pool_size,
        })
    }

    /// [`connect`](Self::connect), waiting for a Redis that is not up yet:
    /// while it cannot be reached, tries again with the reconnect backoff
    /// (100 ms doubling to `reconnect_max_delay_ms`) up to
    /// `reconnect_max_attempts` times (0: until `stop` is set), saying every
    /// few seconds that it waits. A refusal that waiting cannot cure (a bad
    /// password, a bad URL) fails at once.
    pub async fn connect_waiting(
        cfg: &RedisConfig,
        dbs: impl IntoIterator<Item = u8>,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<Self, WriterError> {
        let dbs: Vec<u8> = dbs.into_iter().collect();
        let started = std::time::Instant::now();
        let mut said = started;
        let mut attempts: u32 = 0;
        let mut delay = Duration::from_millis(100);
        let cap = Duration::from_millis(cfg.reconnect_max_delay_ms.max(100));
        loop {
            let error = match Self::connect(cfg, dbs.iter().copied()).await {
                Ok(pools) => {
                    if attempts > 0 {
                        tracing::info!(
                            url = %redact_url(&cfg.url),
                            waited_s = started.elapsed().as_secs_f64(),
                            "Redis is up"
                        );
                    }
                    return Ok(pools);
                }
                Err(WriterError::Connect { url, db, source })
                    if matches!(
                        source.kind(),
                        ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled
                    ) =>
                {
                    WriterError::Connect { url, db, source }
                }
                Err(other) => return Err(other),
            };
            attempts += 1;
            let limit = cfg.reconnect_max_attempts;
            if (limit != 0 && attempts >= limit) || stop.load(std::sync::atomic::Ordering::Relaxed)
            {
                return Err(WriterError::GaveUpConnecting {
                    attempts,
                    secs: started.elapsed().as_secs_f64(),
                    limit,
                    last: Box::new(error),
                });
            }
            if attempts == 1 || said.elapsed() >= Duration::from_secs(5) {
                said = std::time::Instant::now();
                tracing::warn!(
                    url = %redact_url(&cfg.url),
                    attempts,
                    waited_s = started.elapsed().as_secs_f64(),
                    error = %error,
                    "waiting for Redis (redis.reconnect_max_attempts = {limit}, 0 = until stopped)"
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(cap);
        }
    }

    /// Connections per DB (the number of writer lanes).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The DB numbers connected.
    pub fn dbs(&self) -> impl Iterator<Item = u8> + '_ {
        self.pools.keys().copied()
    }

    /// The pool of DB `db`, if it was connected.
    pub fn pool(&self, db: u8) -> Option<&Pool> {
        self.pools.get(&db)
    }

    /// Connection `lane` of DB `db`. Each lane always uses the same connection,
    /// so its writes reach Redis in the order it sends them.
    pub fn client(&self, db: u8, lane: usize) -> Result<&Client, WriterError> {
        let pool = self.pools.get(&db).ok_or(WriterError::NoPool(db))?;
        let clients = pool.clients();
        Ok(&clients[lane % clients.len()])
    }

    /// Closes every connection.
    pub async fn quit(&self) {
        futures_util::future::join_all(self.pools.values().map(|pool| pool.quit())).await;
    }
}
