//! The tick file formats tickwire replays, and how a file's format is told.

use std::fmt;
use std::str::FromStr;

/// A tick file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// tickwire's normalized tick JSON lines (what `tickwire synth` writes).
    TicksJson,
    /// Raw captured frames as JSON lines (what `tickwire record` writes):
    /// `{"recv_ns":..,"feed":"binance","data":"<frame>"[,"enc":"base64"]}`.
    Frames,
    /// Binance public trade dump: `id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match]`.
    BinanceCsv,
    /// Tardis trades CSV: `exchange,symbol,timestamp,local_timestamp,id,side,price,amount`.
    TardisCsv,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::TicksJson,
        Format::Frames,
        Format::BinanceCsv,
        Format::TardisCsv,
    ];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::TicksJson => "ticks",
            Format::Frames => "frames",
            Format::BinanceCsv => "binance-csv",
            Format::TardisCsv => "tardis-csv",
        }
    }

    /// The feed name rejected lines of this format are dead-lettered under
    /// (recorded frames use the feed named in each line when it is a
    /// configured feed's or a venue's name, this one otherwise).
    pub fn default_feed(self) -> &'static str {
        match self {
            Format::TicksJson => "tickwire",
            Format::Frames => crate::RECORDED_FEED,
            Format::BinanceCsv => "binance",
            Format::TardisCsv => "tardis",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format {s:?} (known: {})", names.join(", "))
            })
    }
}

/// What the parser needs to know about the file a line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMeta {
    pub format: Format,
    /// The instrument of a Binance trade dump (its lines do not name it).
    pub symbol: Option<String>,
    /// The exchange of a Binance trade dump.
    pub exchange: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    #[error("cannot tell the format of {file}: pass --format ({})", names())]
    Unknown { file: String },
    #[error("cannot tell the symbol of Binance trade dump {file}: name it like BTCUSDT-trades-2024-01-01.csv or pass --symbol")]
    NoSymbol { file: String },
}

fn names() -> String {
    Format::ALL.map(|f| f.name()).join(", ")
}

/// `BTCUSDT-trades-2024-01-01.csv[.zst]` -> `BTCUSDT`. A compressed file is
/// named by what it holds: the name less `.zst` or `.gz`, a zip's entry name.
pub fn symbol_from_binance_file_name(file_name: &str) -> Option<String> {
    let (symbol, rest) = file_name.split_once("-trades-")?;
    let valid = !symbol.is_empty() && symbol.bytes().all(|b| b.is_ascii_alphanumeric());
    (valid && rest.contains(".csv")).then(|| symbol.to_ascii_uppercase())
}

/// Tells a file's format from its name and first line, or takes `forced`.
/// `symbol` overrides the symbol of a Binance trade dump.
pub fn detect(
    file_name: &str,
    first_line: &[u8],
    forced: Option<Format>,
    symbol: Option<&str>,
) -> Result<SourceMeta, DetectError> {
    let first = std::str::from_utf8(first_line)
        .unwrap_or("")
        .trim_start_matches('\u{feff}')
        .trim();
    let format = match forced {
        Some(f) => f,
        None if first.starts_with('{') => {
            if first.contains("\"recv_ns\"") && first.contains("\"data\"") {
                Format::Frames
            } else {
                Format::TicksJson
            }
        }
        None if first.starts_with("exchange,symbol,timestamp,local_timestamp") => Format::TardisCsv,
        None if symbol_from_binance_file_name(file_name).is_some()
            || looks_like_binance_csv(first) =>
        {
            Format::BinanceCsv
        }
        None => {
            return Err(DetectError::Unknown {
                file: file_name.to_string(),
            })
        }
    };
    let symbol = match format {
        Format::BinanceCsv => Some(
            symbol
                .map(|s| s.to_ascii_uppercase())
                .or_else(|| symbol_from_binance_file_name(file_name))
                .ok_or_else(|| DetectError::NoSymbol {
                    file: file_name.to_string(),
                })?,
        ),
        _ => None,
    };
    Ok(SourceMeta {
        format,
        symbol,
        exchange: "binance".to_string(),
    })
}

fn looks_like_binance_csv(first: &str) -> bool {
    let fields: Vec<&str> = first.split(',').collect();
    matches!(fields.len(), 6 | 7)
        && (fields[0] == "id" || fields[0].bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format() {
        let d =
            |name: &str, line: &str| detect(name, line.as_bytes(), None, None).map(|m| m.format);
        assert_eq!(
            d(
                "x.jsonl",
                r#"{"exchange":"NSE","symbol":"A","ts":1,"ltp":1,"qty":1}"#
            ),
            Ok(Format::TicksJson)
        );
        assert_eq!(
            d("x.jsonl", r#"{"recv_ns":1,"feed":"binance","data":"{}"}"#),
            Ok(Format::Frames)
        );
        assert_eq!(
            d(
                "t.csv",
                "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
            ),
            Ok(Format::TardisCsv)
        );
        assert_eq!(
            d(
                "BTCUSDT-trades-2024-01-01.csv",
                "1,42000.1,0.5,21000.05,1704067200000,true,true"
            ),
            Ok(Format::BinanceCsv)
        );
        assert!(matches!(
            d("notes.txt", "hello"),
            Err(DetectError::Unknown { .. })
        ));
    }

    #[test]
    fn binance_symbol_from_name_or_flag() {
        let m = detect(
            "ETHUSDT-trades-2024-01-01.csv",
            b"1,2,3,4,5,true,true",
            None,
            None,
        )
        .unwrap();
        assert_eq!(m.symbol.as_deref(), Some("ETHUSDT"));
        let m = detect("dump.csv", b"1,2,3,4,5,true,true", None, Some("solusdt")).unwrap();
        assert_eq!(m.symbol.as_deref(), Some("SOLUSDT"));
        assert!(matches!(
            detect("dump.csv", b"1,2,3,4,5,true,true", None, None),
            Err(DetectError::NoSymbol { .. })
        ));
        assert_eq!(
            symbol_from_binance_file_name("BTCUSDT-trades-2024-01.csv.zst").as_deref(),
            Some("BTCUSDT")
        );
    }

    #[test]
    fn forced_format_wins() {
        let m = detect("x", b"garbage", Some(Format::TicksJson), None).unwrap();
        assert_eq!(m.format, Format::TicksJson);
        assert_eq!("tardis-csv".parse::<Format>(), Ok(Format::TardisCsv));
        assert!("nope".parse::<Format>().is_err());
    }
}
