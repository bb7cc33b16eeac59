//! Timestamps as the API shows them: Unix milliseconds inside, RFC 3339 text outside.

use serde::Serializer;

/// RFC 3339 UTC text with exactly three fraction digits, so timestamps also sort as text.
pub fn rfc3339(millis: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let nanos = i128::from(millis) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

/// Parses RFC 3339 text to Unix milliseconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Serializes Unix milliseconds as RFC 3339 (`#[serde(serialize_with = "timestamp")]`).
pub fn timestamp<S: Serializer>(millis: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*millis))
}

pub fn optional_timestamp<S: Serializer>(millis: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match millis {
        Some(m) => s.serialize_str(&rfc3339(*m)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_fixed_width() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_700_000_000_120),
            "2023-11-14T22:13:20.120Z"
        );
        assert_eq!(
            super::parse_rfc3339("2023-11-14T22:13:20.120Z"),
            Some(1_700_000_000_120)
        );
    }
}
