//! The position of a poller in the feed of closures.
//!
//! Closures are ordered by the id of the transaction that stored them, then
//! by row id. A plain sequence is not enough: sequence numbers are taken
//! before commit, so a closure numbered 7 can commit after 8 was read, and a
//! cursor at 8 would skip it for ever. The feed therefore hands out only rows
//! whose transaction is older than the oldest transaction still running
//! (`pg_snapshot_xmin(pg_current_snapshot())`): nothing can commit behind
//! them any more, so a cursor never passes a row it has not returned. A
//! transaction held open anywhere on the database server delays the feed
//! until it ends; it never makes it skip.

/// Where a poller stands: after the row `id` of transaction `xid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeedPosition {
    pub xid: i64,
    pub id: i64,
}

impl FeedPosition {
    /// Before every closure.
    pub const START: FeedPosition = FeedPosition { xid: 0, id: 0 };

    /// The cursor text, before `pagination::encode_token` makes it opaque.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.xid, self.id)
    }

    /// `None` for text `encode` did not produce.
    pub fn decode(text: &str) -> Option<FeedPosition> {
        let (xid, id) = text.split_once('.')?;
        let position = FeedPosition {
            xid: xid.parse().ok()?,
            id: id.parse().ok()?,
        };
        (position.xid >= 0 && position.id >= 0).then_some(position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_garbage_is_refused() {
        let position = FeedPosition {
            xid: 9_000_000_123,
            id: 42,
        };
        assert_eq!(FeedPosition::decode(&position.encode()), Some(position));
        for garbage in ["", "12", "a.b", "1.2.3", "-1.5", "5.-1", "1 .2"] {
            assert_eq!(FeedPosition::decode(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn positions_order_by_transaction_then_row() {
        let early_transaction_late_row = FeedPosition { xid: 10, id: 99 };
        let late_transaction_early_row = FeedPosition { xid: 11, id: 1 };
        assert!(early_transaction_late_row < late_transaction_early_row);
        assert!(FeedPosition::START < early_transaction_late_row);
    }
}
