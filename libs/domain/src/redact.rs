//! What responders may read of the complainant's own words: the free text
//! with e-mail addresses, phone numbers and the complainant's name taken out.
//! The original stays in intake.

/// Replaces e-mail addresses, phone numbers (7 or more digits, with the usual
/// separators) and every part of `name` (words of 3 letters or more,
/// whatever their case) in `text` by `[redacted]`.
pub fn for_responders(text: &str, name: &str) -> String {
    let name_parts: Vec<String> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|p| p.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        // words and their separators are handled one at a time
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_len);
        if !word.is_empty() {
            out.push_str(&redact_word(word, &name_parts));
        }
        let space_len = after
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(after.len());
        out.push_str(&after[..space_len]);
        rest = &after[space_len..];
    }
    redact_phone_runs(&out)
}

const REDACTED: &str = "[redacted]";

fn redact_word(word: &str, name_parts: &[String]) -> String {
    if looks_like_email(word) {
        return REDACTED.to_string();
    }
    // a name part inside a word, e.g. "Dana's" or "(Dana)"
    let mut word = word.to_string();
    for part in name_parts {
        while let Some(start) = word.to_lowercase().find(part.as_str()) {
            word.replace_range(start..start + part.len(), REDACTED);
        }
    }
    word
}

fn looks_like_email(word: &str) -> bool {
    let trimmed = word.trim_matches(|c: char| !c.is_alphanumeric());
    match trimmed.split_once('@') {
        Some((local, domain)) => !local.is_empty() && domain.contains('.'),
        None => false,
    }
}

/// Runs of digits with phone separators (space, "-", ".", "(", ")", "+")
/// holding 7 or more digits.
fn redact_phone_runs(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let is_part = |c: char| c.is_ascii_digit() || " -.()+".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() || chars[i] == '+' || chars[i] == '(' {
            let mut j = i;
            while j < chars.len() && is_part(chars[j]) {
                j += 1;
            }
            // the run must not end in separators that belong to the sentence
            let mut end = j;
            while end > i && !chars[end - 1].is_ascii_digit() {
                end -= 1;
            }
            let digits = chars[i..end].iter().filter(|c| c.is_ascii_digit()).count();
            if digits >= 7 {
                out.push_str(REDACTED);
                out.extend(&chars[end..j]);
                i = j;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
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
}
