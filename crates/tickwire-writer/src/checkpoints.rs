//! The state checkpoints an earlier process left: read at start (and by the
//! live run when it meets an instrument), retried while Redis is away.

use std::sync::Arc;

use tickwire_core::config::Keys;
use tickwire_core::Instrument;

use crate::dispatch::instrument_value;
use crate::pools::RedisPools;
use crate::WriterError;
use crate::{is_loading, retry_backoff, wait_loaded};
use tickwire_core::{Config, Db};

/// The key of `inst`'s state checkpoint (in the system DB, beside the
/// process's other bookkeeping).
pub fn checkpoint_key(keys: &Keys, inst: &Instrument) -> String {
    keys.checkpoint
        .render(keys.prefix_of(Db::System), |n| instrument_value(inst, n))
}

/// Reads the checkpoints of `insts` (one pipelined GET each) from the
/// system DB: what a process continues each instrument from. A Redis still
/// loading its data set is waited for (see `wait_loaded`), then read.
pub async fn load_checkpoints(
    pools: &RedisPools,
    config: &Config,
    keys: &Keys,
    insts: &[Arc<Instrument>],
) -> Result<Vec<Option<String>>, WriterError> {
    let client = pools.client(config.databases.get(Db::System), 0)?;
    loop {
        let p = client.pipeline();
        for inst in insts {
            let _: () = fred::prelude::KeysInterface::get(&p, checkpoint_key(keys, inst))
                .await
                .map_err(WriterError::Checkpoint)?;
        }
        let read = p.try_all::<Option<String>>().await;
        if read.iter().any(|r| r.as_ref().is_err_and(is_loading)) {
            wait_loaded(client).await;
            continue;
        }
        return read
            .into_iter()
            .map(|r| r.map_err(WriterError::Checkpoint))
            .collect();
    }
}

/// A Redis read the writer cannot go on without, tried with the writer's
/// backoff while it fails (at most 6 attempts, about 2 s), on `client`; a
/// Redis still loading its data set is waited for (not an attempt).
pub(crate) async fn read_retrying<T, F, Fut>(
    client: &fred::prelude::Client,
    mut read: F,
) -> Result<T, fred::error::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, fred::error::Error>>,
{
    let mut tries = 0;
    loop {
        match read().await {
            Ok(v) => return Ok(v),
            Err(e) if is_loading(&e) => {
                wait_loaded(client).await;
            }
            Err(e) if tries >= 5 => return Err(e),
            Err(e) => {
                tries += 1;
                tracing::warn!(attempt = tries, error = %e, "Redis read failed, retrying");
                tokio::time::sleep(retry_backoff(tries)).await;
            }
        }
    }
}
