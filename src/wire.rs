//! Formats shared by every transport.
use chrono::{DateTime, SecondsFormat, Utc};

/// ISO-8601 UTC with millisecond precision, e.g. `2026-11-24T20:40:00.123Z`: the one
/// timestamp format on the wire, REST and Socket.IO alike.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    #[test]
    fn utc_with_millis_and_z() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 20, 40, 0).unwrap();
        assert_eq!(super::iso(t), "2026-11-24T20:40:00.000Z");
    }
}
