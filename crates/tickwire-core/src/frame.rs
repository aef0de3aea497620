//! One frame of a venue: its payload, and why a decoder refused it (a
//! venue's decoder and its trade history answer in these terms).

/// One WebSocket frame's payload.
#[derive(Debug, Clone, Copy)]
pub enum Frame<'a> {
    Text(&'a [u8]),
    Binary(&'a [u8]),
}

/// Why a frame was rejected: a low-cardinality class and a readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub error_type: &'static str,
    pub message: String,
}

impl FrameError {
    pub fn new(error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            error_type,
            message: message.into(),
        }
    }
}
