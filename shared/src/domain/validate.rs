//! Validation shared by every resource: the one error a caller's input can cause, and text rules.

/// A request field is missing, malformed or out of range; `field` names it as the caller sent it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: &str, reason: impl Into<String>) -> Self {
        Invalid {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

fn no_control_chars(field: &str, text: &str) -> Result<(), Invalid> {
    if text.chars().any(char::is_control) {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(())
}

/// Non-blank text of at most `max_chars` characters, without control characters.
pub fn bounded_text(field: &str, text: String, max_chars: usize) -> Result<String, Invalid> {
    if text.trim().is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    if text.chars().count() > max_chars {
        return Err(Invalid::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    no_control_chars(field, &text)?;
    Ok(text)
}

/// Characters that change how text around them is shown without being seen: bidirectional
/// overrides, isolates and marks (Trojan Source), zero-width and other invisible characters, and
/// Unicode tags. A name shown to others must look like what it is.
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                 // soft hyphen
            | '\u{034F}'           // combining grapheme joiner
            | '\u{061C}'           // Arabic letter mark
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner; LRM, RLM
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, isolates
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}' // tags
    )
}

/// An optional filter value: when present, non-empty and at most `max_chars` long.
pub fn optional_text(
    field: &str,
    value: Option<String>,
    max_chars: usize,
) -> Result<Option<String>, Invalid> {
    match value {
        Some(v) if v.is_empty() => Err(Invalid::new(field, "must not be empty")),
        Some(v) if v.chars().count() > max_chars => Err(Invalid::new(
            field,
            format!("must be at most {max_chars} characters"),
        )),
        other => Ok(other),
    }
}

/// Rejects `null` for a field that cannot be cleared.
pub fn not_null<T>(field: &str, value: Option<T>) -> Result<T, Invalid> {
    value.ok_or_else(|| Invalid::new(field, "must not be null"))
}

/// Ids are UUIDs this service generated; anything else cannot name a stored object.
pub fn is_id(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::try_parse(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_canonical_uuids() {
        assert!(is_id("00000000-0000-4000-8000-000000000001"));
        assert!(!is_id("not-a-uuid"));
        assert!(!is_id("00000000000040008000000000000001"));
    }

    #[test]
    fn text_is_bounded_and_printable() {
        assert!(bounded_text("n", "  ".into(), 5).is_err());
        assert!(bounded_text("n", "abcdef".into(), 5).is_err());
        assert!(bounded_text("n", "a\u{7}".into(), 5).is_err());
        assert_eq!(bounded_text("n", "ok".into(), 5).unwrap(), "ok");
    }
}
