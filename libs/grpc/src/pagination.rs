//! List pagination the AIP-158 way: `page_size` with a default and a maximum,
//! and `page_token`s that are opaque to callers. A token wraps a service's
//! own cursor (e.g. the last key it returned) with a version tag, so the
//! cursor format can change without old tokens being misread: a token of an
//! unknown version is rejected like any other garbage.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::status::FieldViolations;

/// Page size when the caller asks for 0 (does not say).
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Larger requests get this many; AIP-158 coerces rather than rejects.
pub const MAX_PAGE_SIZE: usize = 1000;

const TOKEN_VERSION: &str = "v1:";

/// The page size to use for a request's `page_size`; a negative value is a
/// violation of `field`.
pub fn page_size(requested: i32, field: &str, violations: &mut FieldViolations) -> usize {
    match usize::try_from(requested) {
        Ok(0) => DEFAULT_PAGE_SIZE,
        Ok(size) => size.min(MAX_PAGE_SIZE),
        Err(_) => {
            violations.add(field, "must not be negative");
            DEFAULT_PAGE_SIZE
        }
    }
}

/// A URL-safe `next_page_token` carrying `cursor`.
pub fn encode_token(cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_VERSION}{cursor}"))
}

/// The cursor in a request's `page_token`: `None` for the first page (an
/// empty token) or, with a violation of `field`, for a token this service did
/// not issue.
pub fn decode_token(token: &str, field: &str, violations: &mut FieldViolations) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let cursor = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(TOKEN_VERSION).map(str::to_owned));
    if cursor.is_none() {
        violations.add(field, "is not a page token from a previous response");
    }
    cursor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_caps_and_rejects_negatives() {
        let mut violations = FieldViolations::new();
        assert_eq!(
            page_size(0, "page_size", &mut violations),
            DEFAULT_PAGE_SIZE
        );
        assert_eq!(page_size(25, "page_size", &mut violations), 25);
        assert_eq!(page_size(1000, "page_size", &mut violations), 1000);
        assert_eq!(
            page_size(i32::MAX, "page_size", &mut violations),
            MAX_PAGE_SIZE
        );
        assert!(violations.is_empty());

        assert_eq!(
            page_size(-1, "page_size", &mut violations),
            DEFAULT_PAGE_SIZE
        );
        let status = violations.into_result().unwrap_err();
        assert_eq!(
            status.message(),
            "invalid request: page_size: must not be negative"
        );
    }

    #[test]
    fn a_token_round_trips_its_cursor_and_is_url_safe() {
        let cursor = "2026-11-01T08:30:00Z|0193a1f2-7c4e-7d1a-9b3e-1f2a3b4c5d6e/?&=+";
        let token = encode_token(cursor);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token}"
        );
        assert!(
            !token.contains("2026"),
            "the cursor is not readable in the token"
        );

        let mut violations = FieldViolations::new();
        assert_eq!(
            decode_token(&token, "page_token", &mut violations).as_deref(),
            Some(cursor)
        );
        assert_eq!(decode_token("", "page_token", &mut violations), None);
        assert!(violations.is_empty());
    }

    #[test]
    fn garbage_and_foreign_tokens_are_violations() {
        let foreign_version = URL_SAFE_NO_PAD.encode("v0:some-cursor");
        let not_utf8 = URL_SAFE_NO_PAD.encode([0xff, 0xfe]);
        for token in [
            "!!!not base64!!!",
            "djE",
            foreign_version.as_str(),
            not_utf8.as_str(),
        ] {
            let mut violations = FieldViolations::new();
            assert_eq!(
                decode_token(token, "page_token", &mut violations),
                None,
                "{token}"
            );
            assert_eq!(violations.len(), 1, "{token}");
        }
    }
}
