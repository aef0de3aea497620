//! Input files and frames for a test: a file written into its directory
//! (compressed when its name ends in `.zst`), and a Dhan binary packet from
//! the published layout.

use std::path::{Path, PathBuf};

/// Writes `body` to `dir/name`, zstd-compressed when `name` ends in `.zst`.
pub fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let bytes = if name.ends_with(".zst") {
        zstd::encode_all(body.as_bytes(), 3).expect("zstd compresses")
    } else {
        body.as_bytes().to_vec()
    };
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// A Dhan full packet (code 8, 162 bytes) from the published layout.
pub fn dhan_full(segment: u8, security: u32, ltp: f32, ltq: u16, ltt: u32, volume: u32) -> Vec<u8> {
    let mut b = vec![8u8];
    b.extend(162u16.to_le_bytes());
    b.push(segment);
    b.extend(security.to_le_bytes());
    b.extend(ltp.to_le_bytes());
    b.extend(ltq.to_le_bytes());
    b.extend(ltt.to_le_bytes());
    b.extend((ltp - 0.5).to_le_bytes()); // ATP
    b.extend(volume.to_le_bytes());
    b.extend(40_000u32.to_le_bytes()); // total sell qty
    b.extend(50_000u32.to_le_bytes()); // total buy qty
    for oi in [0u32, 0, 0] {
        b.extend(oi.to_le_bytes());
    }
    for v in [2_440.0f32, 2_430.0, 2_460.0, 2_420.0] {
        b.extend(v.to_le_bytes()); // open, close, high, low
    }
    for level in 0..5u32 {
        b.extend((100 * (level + 1)).to_le_bytes()); // bid qty
        b.extend((110 * (level + 1)).to_le_bytes()); // ask qty
        b.extend(((level + 1) as u16).to_le_bytes()); // bid orders
        b.extend(((level + 2) as u16).to_le_bytes()); // ask orders
        b.extend((ltp - 0.05 * (level + 1) as f32).to_le_bytes());
        b.extend((ltp + 0.05 * (level + 1) as f32).to_le_bytes());
    }
    assert_eq!(b.len(), 162);
    b
}

/// `name` from the environment, else `default`: the size a bench script
/// raises a test to (`benches/spool.sh`, `benches/stall_bars.sh`).
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
