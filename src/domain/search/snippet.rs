//! The part of a hit's text worth showing, with the searched words marked. Computed
//! here rather than by either database (`ts_headline`, FTS5's `snippet()`) so both give
//! the same answer, and as plain segments rather than markup: a client renders each as
//! text, and no `<b>` in a message can pass for a highlight.

use super::query::word_spans;

/// Characters of text shown before the first highlighted word.
const LEAD_CHARS: usize = 30;
/// Most characters a snippet shows (ellipses aside).
const SNIPPET_CHARS: usize = 160;
const ELLIPSIS: &str = "…";

/// A run of a snippet's text; `matched` when it is one of the searched words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub matched: bool,
}

/// The window of `content` around its first searched word, cut into segments.
pub fn snippet(content: &str, words: &[String]) -> Vec<Segment> {
    let matches: Vec<(usize, usize)> = word_spans(content)
        .filter(|&(s, e)| {
            let word = content[s..e].to_lowercase();
            words.contains(&word)
        })
        .collect();
    // Byte offset of each character, and the end, to cut on character boundaries.
    let bounds: Vec<usize> = content
        .char_indices()
        .map(|(i, _)| i)
        .chain([content.len()])
        .collect();
    let chars = bounds.len() - 1;
    let first_char = matches
        .first()
        .map_or(0, |&(s, _)| bounds.partition_point(|&b| b < s));
    let start_char = first_char.saturating_sub(LEAD_CHARS);
    let end_char = (start_char + SNIPPET_CHARS).min(chars);
    let (start, end) = (bounds[start_char], bounds[end_char]);

    let mut segments: Vec<Segment> = Vec::new();
    let mut push = |text: &str, matched: bool| {
        if text.is_empty() {
            return;
        }
        match segments.last_mut() {
            Some(last) if !last.matched && !matched => last.text.push_str(text),
            _ => segments.push(Segment {
                text: text.to_owned(),
                matched,
            }),
        }
    };
    if start > 0 {
        push(ELLIPSIS, false);
    }
    let mut at = start;
    for &(s, e) in matches.iter().filter(|&&(s, e)| s >= start && e <= end) {
        push(&content[at..s], false);
        push(&content[s..e], true);
        at = e;
    }
    push(&content[at..end], false);
    if end < content.len() {
        push(ELLIPSIS, false);
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(segments: &[Segment]) -> String {
        segments
            .iter()
            .map(|s| {
                if s.matched {
                    format!("[{}]", s.text)
                } else {
                    s.text.clone()
                }
            })
            .collect()
    }

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn marks_whole_words_whatever_their_case() {
        let s = snippet("Apple pie, apples and APPLE.", &words(&["apple"]));
        assert_eq!(render(&s), "[Apple] pie, apples and [APPLE].");
    }

    #[test]
    fn a_long_text_is_cut_around_the_first_match() {
        let content = format!("{} needle {}", "a".repeat(300), "b".repeat(300));
        let s = snippet(&content, &words(&["needle"]));
        let text = render(&s);
        assert!(text.starts_with('…') && text.ends_with('…'), "{text}");
        assert!(text.contains("[needle]"));
        let shown = text.trim_matches('…').chars().count() - 2;
        assert_eq!(shown, SNIPPET_CHARS);
        assert_eq!(text.find("[needle]").unwrap() - '…'.len_utf8(), LEAD_CHARS);
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let content = format!("{}ß wort {}", "é".repeat(200), "ü".repeat(200));
        let text = render(&snippet(&content, &words(&["wort"])));
        assert!(text.contains("[wort]"));
        assert_eq!(
            render(&snippet("ab", &words(&["zz"]))),
            "ab",
            "no match: the start"
        );
    }
}
