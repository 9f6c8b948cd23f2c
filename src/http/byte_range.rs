//! The `Range` request header (RFC 9110 §14): one byte range of a download.
use std::ops::Range;

/// What a `Range` header asks of a representation of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Requested {
    /// No usable range: send everything (also for a malformed header or several
    /// ranges, which a server may answer whole).
    Whole,
    /// One satisfiable range: answer 206 with it.
    Part(Range<u64>),
    /// A range starting past the end: answer 416.
    Unsatisfiable,
}

/// Reads a `Range` header value against a size.
pub fn requested(header: Option<&str>, size: u64) -> Requested {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Requested::Whole;
    };
    if spec.contains(',') {
        return Requested::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Requested::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // `bytes=-N`: the last N bytes.
        (true, _, Some(n)) if n > 0 && size > 0 => Requested::Part(size.saturating_sub(n)..size),
        (true, _, Some(_)) => Requested::Unsatisfiable,
        (false, Some(start), _) if start >= size => Requested::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => Requested::Part(start..size),
        (false, Some(start), Some(end)) if end >= start => Requested::Part(start..(end + 1).min(size)),
        _ => Requested::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_of_one_range() {
        assert_eq!(requested(Some("bytes=0-9"), 100), Requested::Part(0..10));
        assert_eq!(requested(Some("bytes=90-"), 100), Requested::Part(90..100));
        assert_eq!(requested(Some("bytes=-5"), 100), Requested::Part(95..100));
        assert_eq!(requested(Some("bytes=-500"), 100), Requested::Part(0..100));
        assert_eq!(requested(Some("bytes=95-1000"), 100), Requested::Part(95..100));
    }

    #[test]
    fn past_the_end_is_unsatisfiable() {
        assert_eq!(requested(Some("bytes=100-"), 100), Requested::Unsatisfiable);
        assert_eq!(requested(Some("bytes=200-300"), 100), Requested::Unsatisfiable);
        assert_eq!(requested(Some("bytes=-0"), 100), Requested::Unsatisfiable);
    }

    #[test]
    fn anything_else_is_answered_whole() {
        for h in [
            None,
            Some("items=0-1"),
            Some("bytes=5-2"),
            Some("bytes=0-1,4-5"),
            Some("bytes=a-b"),
            Some("bytes=-"),
        ] {
            assert_eq!(requested(h, 100), Requested::Whole, "{h:?}");
        }
    }
}
