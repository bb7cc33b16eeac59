//! Browser pages and their static assets (the portal, the API reference): the security headers
//! of a page that handles credentials, caching, validators and content coding. The bytes are embedded by the one function that serves the pages (the marketplace); this module
//! only knows how to answer for an [`Asset`].

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::cache::{is_fresh, strong_etag};
use crate::http::error::ApiError;

/// The Content-Security-Policy of the pages: only this origin, for everything. No inline script or
/// style, no `eval`, no plugins, no `<base>` rewriting, no native form submissions (every form is
/// handled by script, so a credential can never end up in a URL), and no framing (clickjacking).
/// `data:` images are the renderer's stylesheet icons.
const CSP_BASE: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'none'; frame-ancestors 'none'";

/// What one page's responses may do. The portal builds its DOM without HTML strings, so it also
/// requires Trusted Types: assigning a string to `innerHTML` and its kin throws, which closes the
/// DOM-XSS sinks. The API reference's renderer sanitises markdown into HTML strings itself, so it
/// gets the base policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// `default-src 'self'` and the rest of the base policy.
    Strict,
    /// The base policy, plus `require-trusted-types-for 'script'` with no policy allowed.
    StrictTrustedTypes,
}

impl Policy {
    pub fn content_security_policy(self) -> String {
        match self {
            Policy::Strict => CSP_BASE.to_owned(),
            Policy::StrictTrustedTypes => {
                format!("{CSP_BASE}; require-trusted-types-for 'script'; trusted-types 'none'")
            }
        }
    }
}

/// How an asset is stored (and so sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// As is.
    Identity,
    /// gzip-compressed at build time (the vendored renderer): sent as `Content-Encoding: gzip`,
    /// which every browser accepts; it keeps the function's artifact small.
    Gzip,
}

/// How long a browser may keep an asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caching {
    /// Never stored: the pages themselves. A page that showed a secret or held an admin token must
    /// not come back from any cache (nor the back/forward cache).
    NoStore,
    /// Stored, but revalidated (`If-None-Match`) before each use: the portal's own scripts and
    /// styles, which change with a deployment under the same name.
    Revalidate,
    /// A year, never revalidated: vendored files whose name carries their version.
    Immutable,
}

impl Caching {
    fn header(self) -> &'static str {
        match self {
            Caching::NoStore => "no-store",
            Caching::Revalidate => "no-cache",
            Caching::Immutable => "public, max-age=31536000, immutable",
        }
    }
}

/// One embedded file.
pub struct Asset {
    /// Its name in the URL, under the page's path (`/portal/<name>`).
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub encoding: Encoding,
    pub caching: Caching,
    etag: OnceLock<String>,
}

impl Asset {
    pub const fn new(
        name: &'static str,
        content_type: &'static str,
        body: &'static [u8],
        encoding: Encoding,
        caching: Caching,
    ) -> Self {
        Asset {
            name,
            content_type,
            body,
            encoding,
            caching,
            etag: OnceLock::new(),
        }
    }

    /// A strong validator over the stored bytes, computed once per instance.
    pub fn etag(&self) -> &str {
        self.etag.get_or_init(|| strong_etag(self.body))
    }
}

/// The `Content-Type` of the files the pages are made of, by extension.
pub fn content_type_of(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether the request's `Accept-Encoding` admits gzip (RFC 9110 §12.5.3): a request without the
/// header accepts any coding; otherwise `gzip` (or `x-gzip`, or `*`) must be listed with a
/// non-zero weight and not refused by name.
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    let values: Vec<&str> = request
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return true;
    }
    let mut named = None;
    let mut wildcard = None;
    for item in values.iter().flat_map(|v| v.split(',')) {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => named = Some(weight > 0.0),
            "*" => wildcard = Some(weight > 0.0),
            _ => {}
        }
    }
    named.or(wildcard).unwrap_or(false)
}

/// The headers every page response carries, whatever its status.
fn secure(response: &mut Response, policy: Policy) {
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&policy.content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    let fixed: [(HeaderName, &str); 6] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        // For browsers older than `frame-ancestors`.
        (header::X_FRAME_OPTIONS, "DENY"),
        // No other origin's window keeps a handle on a page holding a token.
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// The answer for `asset`: the bytes with their type, caching, validator and coding; `304` when
/// the browser's copy is current; `406` for a client that refuses the gzip it is stored as.
pub fn serve(asset: &Asset, request: &HeaderMap, policy: Policy) -> Response {
    let gzip = asset.encoding == Encoding::Gzip;
    let mut response = if gzip && !accepts_gzip(request) {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "this file is stored gzip-compressed only; send Accept-Encoding: gzip",
        )
        .into_response()
    } else if asset.caching != Caching::NoStore && is_fresh(request, asset.etag()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = (StatusCode::OK, asset.body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        if gzip {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(asset.caching.header()),
    );
    if asset.caching != Caching::NoStore {
        if let Ok(etag) = HeaderValue::from_str(asset.etag()) {
            headers.insert(header::ETAG, etag);
        }
    }
    if gzip {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    secure(&mut response, policy);
    response
}

/// The answer for the asset called `name` among `assets`, or a 404 problem (with the same
/// security headers) when there is none.
pub fn serve_named(assets: &[Asset], name: &str, request: &HeaderMap, policy: Policy) -> Response {
    match assets.iter().find(|asset| asset.name == name) {
        Some(asset) => serve(asset, request, policy),
        None => {
            let mut response = ApiError::not_found("file").into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            secure(&mut response, policy);
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn gzip_is_acceptable_unless_refused() {
        assert!(accepts_gzip(&request(&[])));
        assert!(accepts_gzip(&request(&[(
            "accept-encoding",
            "gzip, deflate, br, zstd"
        )])));
        assert!(accepts_gzip(&request(&[(
            "accept-encoding",
            "br, *;q=0.1"
        )])));
        assert!(!accepts_gzip(&request(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&request(&[(
            "accept-encoding",
            "gzip;q=0, *"
        )])));
        assert!(!accepts_gzip(&request(&[("accept-encoding", "br, *;q=0")])));
    }

    static SCRIPT: Asset = Asset::new(
        "a.js",
        "text/javascript; charset=utf-8",
        b"export {};",
        Encoding::Identity,
        Caching::Revalidate,
    );

    #[test]
    fn a_current_copy_is_not_sent_again() {
        let fresh = serve(
            &SCRIPT,
            &request(&[("if-none-match", "\"0\"")]),
            Policy::Strict,
        );
        assert_eq!(fresh.status(), StatusCode::OK);
        let etag = fresh.headers()[header::ETAG].to_str().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("W/{etag}")).unwrap(),
        );
        let cached = serve(&SCRIPT, &headers, Policy::Strict);
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(cached.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(cached
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY));
    }

    #[test]
    fn the_portal_policy_adds_trusted_types_to_the_base() {
        let strict = Policy::Strict.content_security_policy();
        let portal = Policy::StrictTrustedTypes.content_security_policy();
        assert!(strict.starts_with("default-src 'self'"));
        assert!(strict.contains("frame-ancestors 'none'"));
        assert!(!strict.contains("unsafe"));
        assert!(portal.starts_with(&strict));
        assert!(portal.contains("require-trusted-types-for 'script'"));
    }
}
