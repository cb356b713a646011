//! What responders may read of the complainant's own words: the free text
//! with e-mail addresses, phone numbers and the complainant's name taken out.
//! The original stays in intake.
//!
//! People write contact details so that filters miss them: "dana at example
//! dot com", "(at)", "[dot]", "nine one seven five five five…", "9l7-555-Ol00",
//! "D a n a". Each of those is taken out too; ordinary words ("parked at the
//! corner", "one car"), addresses, plates, times and dates are left alone
//! (`tests/redaction-corpus.tsv` holds the cases, both ways).

use std::{ops::Range, sync::LazyLock};

use regex::Regex;

const REDACTED: &str = "[redacted]";

/// A phone number has at least this many digits (a local number without its
/// area code has 7).
const MIN_PHONE_DIGITS: usize = 7;

/// Replaces e-mail addresses (also written with "at" and "dot"), phone
/// numbers (7 or more digits with the usual separators, spelled in words or
/// with letters for digits) and every part of `name` (3 letters or more,
/// whatever their case, also spelled out letter by letter) in `text` by
/// `[redacted]`.
pub fn for_responders(text: &str, name: &str) -> String {
    let mut ranges = email_ranges(text);
    ranges.extend(name_ranges(text, name));
    ranges.extend(phone_ranges(text));
    replace(text, ranges)
}

static LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:https?://|www\.)\S+|\b[a-z0-9][a-z0-9-]*\.(?:com|org|net|gov|edu|nyc|us|io|info|biz|me|co|app|ly)\b",
    )
    .expect("the link pattern compiles")
});

/// What in `text` could reach or identify whoever wrote it — phone numbers,
/// e-mail addresses (written plainly or to slip past a filter) and links —
/// by kind, for text that goes to a complainant from a responder, who must
/// stay as anonymous to the complainant as the complainant is to them.
pub fn contact_details_in(text: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    if !phone_ranges(text).is_empty() {
        found.push("a phone number");
    }
    if !email_ranges(text).is_empty() {
        found.push("an e-mail address");
    }
    if LINK.is_match(text) {
        found.push("a link");
    }
    found
}

/// `text` with each range (merged where they overlap) replaced by the marker.
fn replace(text: &str, mut ranges: Vec<Range<usize>>) -> String {
    ranges.sort_by_key(|range| (range.start, range.end));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut pending: Option<Range<usize>> = None;
    for range in ranges {
        match &mut pending {
            Some(open) if range.start <= open.end => open.end = open.end.max(range.end),
            _ => {
                if let Some(done) = pending.take() {
                    out.push_str(&text[at..done.start]);
                    out.push_str(REDACTED);
                    at = done.end;
                }
                pending = Some(range);
            }
        }
    }
    if let Some(done) = pending {
        out.push_str(&text[at..done.start]);
        out.push_str(REDACTED);
        at = done.end;
    }
    out.push_str(&text[at..]);
    out
}

/// "@" or its spellings: "(at)", "[at]", "{at}", "<at>", " at ".
const AT: &str = r"(?:\s*@\s*|\s*[\(\[\{<]\s*at\s*[\)\]\}>]\s*|\s+at\s+)";
/// "." or its spellings. A plain "." has no space around it (or space on
/// both sides): "at home. Later" is a sentence, not an address.
const DOT: &str = r"(?:\.|\s+\.\s+|\s*[\(\[\{<]\s*dot\s*[\)\]\}>]\s*|\s+dot\s+)";
const LABEL: &str = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?";

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)\b[a-z0-9](?:[a-z0-9._%+-]*[a-z0-9])?{AT}{LABEL}(?:{DOT}{LABEL})*{DOT}[a-z]{{2,24}}\b"
    ))
    .expect("the e-mail pattern compiles")
});

/// Every e-mail address, overlapping ones included ("Dana at dana.x at
/// gmail dot com" holds two candidates; the later one is the address).
/// Web and government addresses written with a plain " at " are sentences
/// ("available at www.nyc.gov/hpd"), not someone's mail box.
fn email_ranges(text: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(found) = EMAIL.find_at(text, from) {
        if !is_web_address(text, found.range()) {
            ranges.push(found.range());
        }
        from = found.start()
            + text[found.start()..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
    }
    ranges
}

fn is_web_address(text: &str, found: Range<usize>) -> bool {
    let matched = text[found.clone()].to_ascii_lowercase();
    let Some((_, domain)) = matched.split_once(" at ") else {
        return false;
    };
    domain.starts_with("www.") || domain.ends_with(".gov") || text[found.end..].starts_with('/')
}

/// Every occurrence of a name part inside a word, and every name part spelled
/// letter by letter ("D a n a", "D.a.n.a").
fn name_ranges(text: &str, name: &str) -> Vec<Range<usize>> {
    let parts: Vec<String> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|part| part.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    if parts.is_empty() {
        return Vec::new();
    }
    let mut ranges = Vec::new();
    let lower = lowercase_same_offsets(text);
    for part in &parts {
        let mut from = 0;
        while let Some(found) = lower[from..].find(part.as_str()) {
            let start = from + found;
            ranges.push(start..start + part.len());
            from = start + part.len();
        }
    }
    // single letters with one separator between them, e.g. "M a r i a"
    let letters: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < letters.len() {
        let mut spelled = String::new();
        let mut end = i;
        let mut j = i;
        while j < letters.len() && letters[j].1.is_alphabetic() {
            let single = j + 1 >= letters.len() || !letters[j + 1].1.is_alphanumeric();
            let starts_word = j == 0 || !letters[j - 1].1.is_alphanumeric();
            if !(single && starts_word) {
                break;
            }
            spelled.extend(letters[j].1.to_lowercase());
            end = j;
            match letters.get(j + 1) {
                Some((_, ' ' | '.' | '-' | '_')) => j += 2,
                _ => break,
            }
        }
        if spelled.chars().count() >= 3
            && let Some(part) = parts.iter().find(|part| spelled.contains(part.as_str()))
        {
            debug_assert!(!part.is_empty());
            let stop = letters[end].0 + letters[end].1.len_utf8();
            ranges.push(letters[i].0..stop);
            i = end + 1;
            continue;
        }
        i += 1;
    }
    ranges
}

/// `text` in lower case where that keeps every byte offset (ASCII letters and
/// the letters whose lower case has the same length); other characters stay.
fn lowercase_same_offsets(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) if l.len_utf8() == c.len_utf8() => l,
                _ => c,
            }
        })
        .collect()
}

/// The digit a word stands for in a spelled-out number.
fn digit_word(word: &str) -> Option<char> {
    Some(match word.to_ascii_lowercase().as_str() {
        "zero" | "oh" => '0',
        "one" => '1',
        "two" => '2',
        "three" => '3',
        "four" => '4',
        "five" => '5',
        "six" => '6',
        "seven" => '7',
        "eight" => '8',
        "nine" => '9',
        _ => return None,
    })
}

/// How many digits a word of a phone number holds: plain digits, a digit
/// spelled as a word, or digits with the letters people put for them
/// ("9l7", "Ol00": l and I for 1, O and o for 0), which needs two real digits.
fn digits_in(word: &str) -> Option<usize> {
    if word.bytes().all(|b| b.is_ascii_digit()) {
        return Some(word.len());
    }
    if digit_word(word).is_some() {
        return Some(1);
    }
    let real = word.bytes().filter(u8::is_ascii_digit).count();
    (real >= 2
        && word
            .bytes()
            .all(|b| b.is_ascii_digit() || b"lIoO".contains(&b)))
    .then_some(word.len())
}

/// Runs of number words (see [`digits_in`]) joined by phone separators
/// holding at least [`MIN_PHONE_DIGITS`] digits, except dates (2023-02-28).
fn phone_ranges(text: &str) -> Vec<Range<usize>> {
    // words and their offsets
    let mut words: Vec<Range<usize>> = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                words.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push(s..text.len());
    }

    let mut ranges = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let Some(first) = digits_in(&text[words[i].clone()]) else {
            i += 1;
            continue;
        };
        let mut groups = vec![first];
        let mut j = i;
        while j + 1 < words.len() {
            let between = &text[words[j].end..words[j + 1].start];
            let Some(next) = digits_in(&text[words[j + 1].clone()]) else {
                break;
            };
            let separators = between.chars().count() <= 3
                && between
                    .chars()
                    .all(|c| matches!(c, ' ' | '-' | '.' | '(' | ')' | '+' | ','));
            // "one car. 5 more" ends a sentence; a comma only joins digits
            // spelled one by one ("Seven One Eight, Five Five Five")
            let sentence_break = between.starts_with(". ")
                || (between.starts_with(", ") && (groups[groups.len() - 1] > 1 || next > 1));
            if !separators || sentence_break {
                break;
            }
            groups.push(next);
            j += 1;
        }
        let run = words[i].start..words[j].end;
        if looks_like_phone(&groups) && !is_date(&text[run.clone()]) {
            // a leading "+" or "(" belongs to the number
            let mut from = run.start;
            while from > 0 && matches!(text.as_bytes()[from - 1], b'+' | b'(') {
                from -= 1;
            }
            ranges.push(from..run.end);
        }
        i = j + 1;
    }
    ranges
}

/// Digit groups that make a phone number: at least 7 digits, and either
/// spelled or spaced out digit by digit (an obfuscation), or ending in the
/// 4-digit line number (212 555 0100, 2125550100). A Queens address such as
/// "64-26 184 Street" has 7 digits but ends in 3.
fn looks_like_phone(groups: &[usize]) -> bool {
    let digits: usize = groups.iter().sum();
    digits >= MIN_PHONE_DIGITS
        && (groups.contains(&1) || groups.last().is_some_and(|&last| last >= 4))
}

/// 2023-02-28, 2023.02.28, 28-02-2023: a date, not a phone number.
fn is_date(run: &str) -> bool {
    let groups: Vec<&str> = run.split(['-', '.']).collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && matches!(
            lengths.as_slice(),
            [4, 2, 2] | [2, 2, 4] | [1 | 2, 1 | 2, 4]
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_out_emails_phones_and_the_complainants_name() {
        let text = "Call Dana Example at (212) 555-0100 or +1 212.555.0199, dana.ex@example.org. Dana's car is fine.";
        let redacted = for_responders(text, "Dana Example");
        for secret in ["Dana", "Example", "555", "0100", "0199", "example.org"] {
            assert!(!redacted.contains(secret), "{secret} left in {redacted:?}");
        }
        assert!(redacted.contains("car is fine"), "{redacted:?}");
    }

    #[test]
    fn keeps_what_describes_the_problem() {
        let text =
            "grey van on the hydrant since 8am, plate 7 ABC 12, 3 cars double parked on 34th St";
        assert_eq!(for_responders(text, ""), text);
    }

    #[test]
    fn short_name_parts_do_not_eat_ordinary_words() {
        assert_eq!(
            for_responders("Jo says the van is on Jo St", "Jo"),
            "Jo says the van is on Jo St"
        );
    }

    #[test]
    fn written_out_addresses_and_numbers_are_taken_out() {
        for (text, secrets) in [
            (
                "write to qz.prwmdw at canary-mail.example please",
                &["qz.prwmdw", "canary-mail"][..],
            ),
            ("dana (at) example [dot] org", &["dana", "example"]),
            ("DANA AT EXAMPLE DOT COM", &["DANA", "EXAMPLE"]),
            (
                "nine one seven five five five zero one two three",
                &["nine one seven", "zero one two"],
            ),
            ("917 five five five 0123", &["917", "0123"]),
            ("9l7-555-Ol00", &["9l7", "Ol00"]),
        ] {
            let redacted = for_responders(text, "");
            for secret in secrets {
                assert!(!redacted.contains(secret), "{secret} left in {redacted:?}");
            }
        }
        assert_eq!(
            for_responders("ask for M a r i a", "Maria Gonzalez"),
            "ask for [redacted]"
        );
    }

    #[test]
    fn a_responders_message_with_a_way_to_reach_them_is_recognised() {
        assert_eq!(
            contact_details_in("call me on 917 555 0123 or write to o.kelly at nypd dot org"),
            ["a phone number", "an e-mail address"]
        );
        assert_eq!(
            contact_details_in("see https://example.com/x or my page insta.me"),
            ["a link"]
        );
        assert!(contact_details_in("Is the grey van still on the hydrant at 34th St?").is_empty());
    }

    /// A name part inside the marker ("Ted" in "redacted") must not loop.
    #[test]
    fn a_name_inside_the_marker_is_replaced_once() {
        assert_eq!(
            for_responders("Ted's car, ask Ted Acton", "Ted Acton"),
            "[redacted]'s car, ask [redacted] [redacted]"
        );
    }

    #[test]
    fn sentences_with_at_dot_and_number_words_stay() {
        for text in [
            "parked at the hydrant at the corner since 2023-02-28",
            "he is at home. Later he left",
            "one car and two trucks, for five days",
            "a red dot sticker on the windshield",
            "from 11:30 pm to 2:15 am on 02/28/2023",
        ] {
            assert_eq!(for_responders(text, "Maria Gonzalez"), text);
        }
    }
}
