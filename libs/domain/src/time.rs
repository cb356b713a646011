//! Conversions between protobuf timestamps and chrono, in one place.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

pub fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

/// `None` for timestamps chrono cannot represent (out of range or negative nanos).
pub fn from_timestamp(ts: &Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(ts.nanos).ok()?;
    DateTime::from_timestamp(ts.seconds, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_to_the_nanosecond() {
        let at = DateTime::from_timestamp(1_677_600_000, 123_456_789).unwrap();
        assert_eq!(from_timestamp(&to_timestamp(at)), Some(at));
    }

    #[test]
    fn rejects_negative_nanos() {
        assert_eq!(
            from_timestamp(&Timestamp {
                seconds: 1,
                nanos: -1
            }),
            None
        );
    }
}
