//! Formats shared by every transport.
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::{Serialize, Serializer};

/// ISO-8601 UTC with millisecond precision, e.g. `2026-11-24T20:40:00.123Z`: the one
/// timestamp format on the wire, REST and Socket.IO alike.
pub fn iso(t: DateTime<Utc>) -> String {
    let mut buf = [0u8; ISO_LEN];
    match write_iso(&mut buf, t) {
        Some(s) => s.to_owned(),
        None => t.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}

/// A timestamp that serialises as [`iso`] text without allocating: lists carry thousands.
#[derive(Debug, Clone, Copy)]
pub struct Iso(pub DateTime<Utc>);

impl Serialize for Iso {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; ISO_LEN];
        match write_iso(&mut buf, self.0) {
            Some(s) => serializer.serialize_str(s),
            None => serializer.serialize_str(&iso(self.0)),
        }
    }
}

const ISO_LEN: usize = "2026-11-24T20:40:00.123Z".len();

/// Writes the digits directly (chrono's formatter goes through `fmt` and was a visible
/// part of rendering a long list). `None` for years outside 0..=9999, which [`iso`]
/// leaves to chrono.
fn write_iso(buf: &mut [u8; ISO_LEN], t: DateTime<Utc>) -> Option<&str> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let mut put = |at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    // A leap second shows as :60, as chrono writes it.
    put(17, t.second() + t.nanosecond() / 1_000_000_000, 2);
    put(20, (t.nanosecond() % 1_000_000_000) / 1_000_000, 3);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        buf[at] = c;
    }
    std::str::from_utf8(buf).ok()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

    #[test]
    fn utc_with_millis_and_z() {
        let t = chrono::Utc.with_ymd_and_hms(2026, 11, 24, 20, 40, 0).unwrap();
        assert_eq!(super::iso(t), "2026-11-24T20:40:00.000Z");
    }

    #[test]
    fn same_text_as_chrono() {
        let mut t: DateTime<Utc> = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
        // ~182-day steps with odd seconds and microseconds: years 1..9999, every field varies.
        for _ in 0..20_000 {
            assert_eq!(super::iso(t), t.to_rfc3339_opts(SecondsFormat::Millis, true));
            t += chrono::Duration::microseconds(15_778_463_012_347);
        }
        let far = Utc.with_ymd_and_hms(12_345, 6, 7, 8, 9, 10).unwrap();
        assert_eq!(super::iso(far), far.to_rfc3339_opts(SecondsFormat::Millis, true));
    }

    #[test]
    fn serialises_like_iso() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap() + chrono::Duration::milliseconds(67);
        assert_eq!(
            serde_json::to_string(&super::Iso(t)).unwrap(),
            "\"2026-01-02T03:04:05.067Z\""
        );
    }
}
