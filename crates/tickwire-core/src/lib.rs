//! tickwire-core owns the vocabulary every stage shares: the normalized [`Tick`]
//! with its [`Instrument`] identity, the [`Event`]s that flow from the parsers
//! through the state stage to the writer (ticks, bars, indicator values, skipped
//! and rejected frames), the Redis key templates and
//! the validated [`Config`], and the [`Venue`] trait every venue implements.
//! It depends on no other tickwire crate, and knows neither a venue's wire
//! format nor Redis.

pub mod bar;
pub mod collisions;
pub mod config;
pub mod db;
pub mod error;
pub mod event;
pub mod feeds;
pub mod frame;
pub mod gap;
pub mod ids;
pub mod keys;
pub mod num;
pub mod profiles;
pub mod redact;
pub mod session;
pub mod telemetry;
pub mod tick;
pub mod venue;

pub use bar::{
    Bar, BarUpdate, FormingGone, IndicatorSet, IndicatorUpdate, Quote, SessionTrade,
    StateCheckpoint, VolumeUpdate,
};
pub use config::Config;
pub use db::Db;
pub use error::{ConfigError, FieldError};
pub use event::{Depth, DepthLevel, Event, FeedEvent, FeedStatus, Rejected};
pub use feeds::FeedConfig;
pub use gap::{FillEnd, Gap, GapOutcome, History, HistoryKey, PageAsk, PageRequest};
pub use ids::StreamIdSeq;
pub use keys::{KeyTemplate, TemplateError};
pub use num::Dec;
pub use tick::{ByAddress, Day, IdSequence, Instrument, InstrumentCache, Tick, TradeId};
pub use venue::{
    FeedVenue, Frame, FrameDecoder, FrameError, Keepalive, SubscriptionOp, TradeIdentity, Venue,
    Venues,
};
