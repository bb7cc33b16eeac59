//! An `application/x-www-form-urlencoded` OAuth request, parsed once; RFC 6749 §3.2 forbids
//! repeated parameters except those later RFCs let repeat.

use crate::oauth::error::OAuthError;

/// Parameters that may appear more than once (RFC 8707 §2 and RFC 8693 §2.1).
const REPEATABLE_PARAMETERS: &[&str] = &["resource", "audience"];

pub struct OAuthForm {
    params: Vec<(String, String)>,
}

impl OAuthForm {
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(body) {
            let repeatable = REPEATABLE_PARAMETERS.contains(&k.as_ref());
            if !repeatable && params.iter().any(|(seen, _)| *seen == k) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter `{k}` is repeated"
                )));
            }
            params.push((k.into_owned(), v.into_owned()));
        }
        Ok(OAuthForm { params })
    }

    /// Every value of a parameter that may repeat (`resource`, `audience`).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter's value; an empty value counts as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A parameter that must be present.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing `{name}` parameter")))
    }
}
