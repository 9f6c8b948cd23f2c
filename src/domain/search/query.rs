//! What a search asks for, parsed from the client's text: the terms, and where a page
//! continues. User input is only ever terms: each word is quoted for FTS5 and handed to
//! PostgreSQL's `plainto_tsquery`, so no query syntax (`"`, `*`, `OR`, `NEAR(`, `-`,
//! `:`) reaches either engine as syntax.
use std::fmt;

use crate::domain::{DomainError, DomainResult};

/// Longest `q`, in characters (Unicode scalar values, as JSON Schema counts them).
pub const MAX_QUERY_CHARS: usize = 200;

/// The terms of a search, every one required (AND), each matched as a whole word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText {
    /// The whitespace-separated pieces that hold a letter or digit, as typed.
    pieces: Vec<String>,
    /// Their words, lowercased (letters and digits runs), for highlighting.
    words: Vec<String>,
}

/// Characters that make a `q` blank: ASCII whitespace, and NUL (read as a separator,
/// since neither database can take it). Spelled out, rather than `char::is_whitespace`,
/// so the OpenAPI pattern says exactly the same thing to every regex engine.
fn is_blank(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\0')
}

impl SearchText {
    /// Refuses a blank or overlong `q`; anything else is terms (possibly none, which
    /// matches nothing: `"*"` is a search for no word at all, not an error).
    pub fn parse(raw: &str) -> DomainResult<SearchText> {
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(DomainError::InvalidInput(format!(
                "`q` must be at most {MAX_QUERY_CHARS} characters"
            )));
        }
        if raw.chars().all(is_blank) {
            return Err(DomainError::InvalidInput("`q` must not be blank".into()));
        }
        let pieces: Vec<String> = raw
            .split(|c: char| c.is_whitespace() || c == '\0')
            .filter(|p| p.chars().any(char::is_alphanumeric))
            .map(str::to_owned)
            .collect();
        let mut words: Vec<String> = Vec::new();
        for piece in &pieces {
            for word in words_of(piece) {
                let word = word.to_lowercase();
                if !words.contains(&word) {
                    words.push(word);
                }
            }
        }
        Ok(SearchText { pieces, words })
    }

    /// No term to look for: the answer is empty without asking the database.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// An FTS5 MATCH expression: each word a quoted string, all of them required (as
    /// `plainto_tsquery` ANDs its words; a quoted piece would be a phrase).
    pub fn fts5(&self) -> String {
        self.words
            .iter()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Plain text for PostgreSQL's `plainto_tsquery`, which ANDs its words and reads
    /// no operators.
    pub fn plain(&self) -> String {
        self.pieces.join(" ")
    }

    /// The lowercased words, to highlight in a hit.
    pub fn words(&self) -> &[String] {
        &self.words
    }
}

/// The runs of letters and digits in `text`, with their byte ranges.
pub fn word_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        let (start, _) = chars.by_ref().find(|(_, c)| c.is_alphanumeric())?;
        let mut end = text.len();
        while let Some(&(i, c)) = chars.peek() {
            if !c.is_alphanumeric() {
                end = i;
                break;
            }
            chars.next();
        }
        Some((start, end))
    })
}

fn words_of(text: &str) -> impl Iterator<Item = &str> {
    word_spans(text).map(move |(s, e)| &text[s..e])
}

/// Where the next page starts: after the hit with this rank and message id (hits are
/// ordered by rank, then newest first).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub rank: f64,
    pub message_id: i64,
}

impl Cursor {
    /// Reads a cursor this endpoint gave (`<rank>:<message id>`).
    pub fn parse(raw: &str) -> DomainResult<Cursor> {
        let bad = || DomainError::InvalidInput("`cursor` must be a `next_cursor` a search answered".into());
        let (rank, id) = raw.trim().split_once(':').ok_or_else(bad)?;
        let digits =
            |s: &str, dot: bool| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || (dot && c == '.'));
        if !digits(rank, true) || !digits(id, false) {
            return Err(bad());
        }
        let rank: f64 = rank.parse().map_err(|_| bad())?;
        let message_id: i64 = id.parse().map_err(|_| bad())?;
        if !rank.is_finite() {
            return Err(bad());
        }
        Ok(Cursor { rank, message_id })
    }
}

impl fmt::Display for Cursor {
    /// `f64`'s `Display` is the shortest text that reads back to the same value, and
    /// never uses an exponent, so the cursor compares exactly with the rank SQL computes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // -0.0 (an FTS5 score of zero, negated) equals 0.0 and reads back as 0.
        let rank = if self.rank == 0.0 { 0.0 } else { self.rank };
        write!(f, "{rank}:{}", self.message_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_syntax_is_only_ever_terms() {
        let text = SearchText::parse(r#"  "quoted OR NEAR( x* -y a:b  "#).unwrap();
        assert_eq!(text.fts5(), r#""quoted" "or" "near" "x" "y" "a" "b""#);
        assert_eq!(text.plain(), r#""quoted OR NEAR( x* -y a:b"#);
        assert_eq!(text.words(), ["quoted", "or", "near", "x", "y", "a", "b"]);
    }

    #[test]
    fn pieces_without_a_letter_or_digit_are_dropped() {
        let text = SearchText::parse("\" * - : ()").unwrap();
        assert!(text.is_empty());
        assert_eq!(
            SearchText::parse("héllo\0wörld").unwrap().words(),
            ["héllo", "wörld"]
        );
    }

    #[test]
    fn blank_and_overlong_queries_are_refused() {
        assert!(SearchText::parse("").is_err());
        assert!(SearchText::parse(" \t\n\0").is_err());
        assert!(SearchText::parse(&"é".repeat(MAX_QUERY_CHARS)).is_ok());
        assert!(SearchText::parse(&"é".repeat(MAX_QUERY_CHARS + 1)).is_err());
        // Not blank by the documented rule, but holds no word: matches nothing.
        assert!(SearchText::parse("\u{a0}").unwrap().is_empty());
    }

    #[test]
    fn words_are_letter_and_digit_runs() {
        let spans: Vec<_> = word_spans("Hi, ça-va? 42!").collect();
        assert_eq!(spans, [(0, 2), (4, 7), (8, 10), (12, 14)]);
    }

    #[test]
    fn a_cursor_reads_back_exactly() {
        for rank in [0.0, -0.0, 0.1, 1.0 / 3.0, 1e-20, 0.060_792_710_632_085_8, 12.5] {
            let cursor = Cursor { rank, message_id: 42 };
            let text = cursor.to_string();
            assert!(!text.contains('e'), "no exponent in {text}");
            assert_eq!(
                Cursor::parse(&text).unwrap(),
                Cursor {
                    rank: rank.abs(),
                    message_id: 42
                }
            );
        }
        for bad in [
            "",
            "1",
            ":1",
            "1:",
            "x:1",
            "1:-2",
            "-1:2",
            "1:2:3",
            "1e5:2",
            "1:99999999999999999999",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad:?}");
        }
    }
}
