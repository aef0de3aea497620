//! The Redis a run writes to, waited for when it is not up yet.

use std::time::{Duration, Instant};

use fred::error::ErrorKind;
use tickwire_core::config::{redact_url, RedisConfig};
use tickwire_writer::{RedisPools, WriterError};
use tokio_util::sync::CancellationToken;

/// Connects to Redis, waiting for one that is not up yet: while it cannot
/// be reached, tries again with the reconnect backoff (100 ms doubling to
/// `reconnect_max_delay_ms`) up to `reconnect_max_attempts` times (0: until
/// `stop`), saying every few seconds that it waits. A refusal that waiting
/// cannot cure (a bad password, a bad URL) fails at once.
pub async fn connect_waiting(
    cfg: &RedisConfig,
    dbs: impl IntoIterator<Item = u8>,
    stop: &CancellationToken,
) -> Result<RedisPools, WriterError> {
    let dbs: Vec<u8> = dbs.into_iter().collect();
    let started = Instant::now();
    let mut said = started;
    let mut attempts: u32 = 0;
    let mut delay = Duration::from_millis(100);
    let cap = Duration::from_millis(cfg.reconnect_max_delay_ms.max(100));
    loop {
        let error = match RedisPools::connect(cfg, dbs.iter().copied()).await {
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
        if (limit != 0 && attempts >= limit) || stop.is_cancelled() {
            return Err(WriterError::GaveUpConnecting {
                attempts,
                secs: started.elapsed().as_secs_f64(),
                limit,
                last: Box::new(error),
            });
        }
        if attempts == 1 || said.elapsed() >= Duration::from_secs(5) {
            said = Instant::now();
            tracing::warn!(
                url = %redact_url(&cfg.url),
                attempts,
                waited_s = started.elapsed().as_secs_f64(),
                error = %error,
                "waiting for Redis (redis.reconnect_max_attempts = {limit}, 0 = until stopped)"
            );
        }
        // A stop ends the wait: one more attempt, then the error above.
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => {}
        }
        delay = (delay * 2).min(cap);
    }
}
