//! Input files as people download them, through the command line: what it
//! prints and how it exits.

use tickwire_testkit::prelude::*;

use std::process::Output;

fn replay(server: &RedisServer, files: &[&std::path::Path]) -> (Output, String, String) {
    run(tickwire!()
        .args(["--redis", &server.url(), "replay", "--max"])
        .args(files))
}

/// `gzip` of "hello\n" (mtime 0): a gzip file by its first bytes.
const GZIP_HELLO: [u8; 26] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0xe7,
    0x02, 0x00, 0x20, 0x30, 0x3a, 0x36, 0x06, 0x00, 0x00, 0x00,
];

#[test]
fn a_gzip_file_named_zst_is_named_for_what_it_is() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("BTCUSDT-trades-2024-01-01.csv.zst");
    std::fs::write(&path, GZIP_HELLO).unwrap();
    let (out, _, stderr) = replay(&server, &[&path]);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: not a zstd file (looks like gzip)",
            path.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("Unknown frame descriptor"), "{stderr}");
}

#[test]
fn an_empty_file_is_a_warning_and_the_run_exits_0() {
    let server = redis();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("BTCUSDT-trades-2024-01-02.csv");
    std::fs::write(&empty, "").unwrap();
    let ticks = dir.path().join("t.jsonl");
    std::fs::write(
        &ticks,
        "{\"exchange\":\"NSE\",\"symbol\":\"SBIN\",\"ts\":1704080700100,\"ltp\":612.35,\"qty\":10}\n",
    )
    .unwrap();
    let (out, stdout, stderr) = replay(&server, &[&empty, &ticks]);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("WARN") && stderr.contains("file is empty"),
        "{stderr}"
    );
    assert!(stderr.contains(&empty.display().to_string()), "{stderr}");
    let row = |label: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|v| v.trim().to_string())
    };
    assert_eq!(row("empty files").as_deref(), Some("1"), "{stdout}");
    assert_eq!(row("files read").as_deref(), Some("2"), "{stdout}");
    assert_eq!(row("ticks written").as_deref(), Some("1"), "{stdout}");
}
