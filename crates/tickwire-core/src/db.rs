//! The logical databases tickwire writes to: [`Db`] names each by purpose,
//! [`DbMap`] (`[databases]`) gives each purpose its number.

use serde::{Deserialize, Serialize};

use crate::error::{check, FieldError};

/// The logical databases tickwire knows by purpose (the DB map of docs/redis-layout.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Db {
    System,
    Prices,
    Premarket,
    ContinuousMarket,
    CumulativeVolume,
    Alerts,
    Microstructure,
    Patterns,
    News,
    Metrics,
}

impl Db {
    pub const ALL: [Db; 10] = [
        Db::System,
        Db::Prices,
        Db::Premarket,
        Db::ContinuousMarket,
        Db::CumulativeVolume,
        Db::Alerts,
        Db::Microstructure,
        Db::Patterns,
        Db::News,
        Db::Metrics,
    ];

    /// The name used in the config file and in output.
    pub fn name(self) -> &'static str {
        match self {
            Db::System => "system",
            Db::Prices => "prices",
            Db::Premarket => "premarket",
            Db::ContinuousMarket => "continuous_market",
            Db::CumulativeVolume => "cumulative_volume",
            Db::Alerts => "alerts",
            Db::Microstructure => "microstructure",
            Db::Patterns => "patterns",
            Db::News => "news",
            Db::Metrics => "metrics",
        }
    }

    pub fn from_name(name: &str) -> Option<Db> {
        Db::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// `[databases]`: the logical DB number of each purpose.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbMap {
    pub system: u8,
    pub prices: u8,
    pub premarket: u8,
    pub continuous_market: u8,
    pub cumulative_volume: u8,
    pub alerts: u8,
    pub microstructure: u8,
    pub patterns: u8,
    pub news: u8,
    pub metrics: u8,
}

impl Default for DbMap {
    fn default() -> Self {
        Self {
            system: 0,
            prices: 2,
            premarket: 3,
            continuous_market: 4,
            cumulative_volume: 5,
            alerts: 6,
            microstructure: 8,
            patterns: 10,
            news: 11,
            metrics: 13,
        }
    }
}

impl DbMap {
    /// The DB number for a purpose.
    pub fn get(&self, db: Db) -> u8 {
        match db {
            Db::System => self.system,
            Db::Prices => self.prices,
            Db::Premarket => self.premarket,
            Db::ContinuousMarket => self.continuous_market,
            Db::CumulativeVolume => self.cumulative_volume,
            Db::Alerts => self.alerts,
            Db::Microstructure => self.microstructure,
            Db::Patterns => self.patterns,
            Db::News => self.news,
            Db::Metrics => self.metrics,
        }
    }

    /// The purposes mapped to DB number `n`, for labelling output.
    pub fn names_of(&self, n: u8) -> Vec<&'static str> {
        Db::ALL
            .into_iter()
            .filter(|d| self.get(*d) == n)
            .map(Db::name)
            .collect()
    }
}

impl DbMap {
    /// Every purpose on a logical DB Redis has (0 to 15).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for db in Db::ALL {
            let n = self.get(db);
            check(
                &mut errors,
                n <= 15,
                &format!("databases.{}", db.name()),
                format!("must be a logical DB between 0 and 15 (got {n})"),
            );
        }
        errors
    }
}
