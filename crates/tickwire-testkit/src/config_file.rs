//! Config files for the binary, written one way: a TOML text into a named
//! file of the test's directory, with the `[[feeds]]` section most live
//! tests share.

use std::path::{Path, PathBuf};

/// Writes `toml` to `dir/name`: the path to pass to `--config`.
pub fn config_file(dir: &Path, name: &str, toml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, toml).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

/// A `[[feeds]]` section: feed `name` of `venue` at `url`, subscribed to
/// `channels` of `symbols`.
pub fn feed_toml(
    name: &str,
    venue: &str,
    url: &str,
    symbols: &[&str],
    channels: &[&str],
) -> String {
    format!(
        "[[feeds]]\nname = \"{name}\"\nvenue = \"{venue}\"\nurl = \"{url}\"\nsymbols = {}\nchannels = {}\n",
        toml_list(symbols),
        toml_list(channels)
    )
}

/// `["a", "b"]`.
fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_section_is_the_toml_a_test_wrote_by_hand() {
        assert_eq!(
            feed_toml(
                "bn",
                "binance",
                "ws://x/stream",
                &["BTCUSDT", "ETHUSDT"],
                &["trade"]
            ),
            "[[feeds]]\nname = \"bn\"\nvenue = \"binance\"\nurl = \"ws://x/stream\"\n\
             symbols = [\"BTCUSDT\", \"ETHUSDT\"]\nchannels = [\"trade\"]\n"
        );
    }
}
