//! What Redis' errors mean to a lane: transient (send again), final, a
//! refusal by the ACL, a script cache that lost its scripts.

use fred::prelude::*;

/// Redis' reply to an XADD whose explicit ID is not above the stream's top.
pub(crate) fn is_id_too_small(e: &Error) -> bool {
    e.details()
        .contains("equal or smaller than the target stream top item")
}

/// Redis lost the script cache (restart, SCRIPT FLUSH): load and send again.
pub(crate) fn is_noscript(e: &Error) -> bool {
    e.details().starts_with("NOSCRIPT")
}

/// Redis' ACL refused the command or one of its keys or channels, or a
/// command a Lua script calls (Redis 7.0 says so with `ERR`, not `NOPERM`).
/// Final: sending it again is refused again.
pub fn is_noperm(e: &Error) -> bool {
    let d = e.details();
    d.starts_with("NOPERM") || d.contains("user executing the script can't run this command")
}

/// Worth sending again: the command may not have reached Redis.
pub(crate) fn is_transient(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::IO
            | ErrorKind::Timeout
            | ErrorKind::Canceled
            | ErrorKind::Backpressure
            | ErrorKind::Routing
    ) || e.details().starts_with("LOADING")
        || e.details().starts_with("BUSY")
        // fred gave up writing the command on a connection that kept failing.
        || e.details().starts_with("Too many failed write attempts")
}
