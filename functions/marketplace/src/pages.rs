//! The browser pages this function embeds: the portal (`/portal`: quick start, onboarding,
//! dashboard) and the API reference (`/docs`), from `portal/` at the repository root. The
//! marketplace carries them because it is the smallest artifact with room under the size budget;
//! the native server serves them through this same router.

use agentidp_shared::axum::extract::rejection::PathRejection;
use agentidp_shared::axum::extract::Path;
use agentidp_shared::axum::http::HeaderMap;
use agentidp_shared::axum::response::{IntoResponse, Response};
use agentidp_shared::http::pages::{serve, serve_named, Asset, Caching, Encoding, Policy};

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";
const TEXT: &str = "text/plain; charset=utf-8";

/// A page or script of our own, from `portal/src/`.
macro_rules! own {
    ($name:literal, $type:expr, $caching:expr) => {
        Asset::new(
            $name,
            $type,
            include_bytes!(concat!("../../../portal/src/", $name)),
            Encoding::Identity,
            $caching,
        )
    };
}

/// A vendored file, from `portal/vendor/` (scripts/vendor-portal.sh); `$file` is its stored name.
macro_rules! vendored {
    ($name:literal, $file:literal, $type:expr, $encoding:expr) => {
        Asset::new(
            $name,
            $type,
            include_bytes!(concat!("../../../portal/vendor/", $file)),
            $encoding,
            Caching::Immutable,
        )
    };
}

static PORTAL_PAGE: Asset = own!("portal.html", HTML, Caching::NoStore);
static DOCS_PAGE: Asset = own!("docs.html", HTML, Caching::NoStore);

/// The files under `/portal/`: one ES module per concern, no build step.
static PORTAL_FILES: [Asset; 16] = [
    // The public marketplace: search, facets, result cards and an agent's page.
    own!("marketplace.html", HTML, Caching::NoStore),
    own!("marketplace.js", JS, Caching::Revalidate),
    own!("portal.css", CSS, Caching::Revalidate),
    own!("icon.svg", SVG, Caching::Revalidate),
    own!("portal.js", JS, Caching::Revalidate),
    own!("api.js", JS, Caching::Revalidate),
    own!("dom.js", JS, Caching::Revalidate),
    own!("quickstart.js", JS, Caching::Revalidate),
    own!("onboarding.js", JS, Caching::Revalidate),
    own!("agents.js", JS, Caching::Revalidate),
    own!("audit.js", JS, Caching::Revalidate),
    own!("usage.js", JS, Caching::Revalidate),
    own!("compliance.js", JS, Caching::Revalidate),
    own!("trust.js", JS, Caching::Revalidate),
    own!("policies.js", JS, Caching::Revalidate),
    own!("webhooks.js", JS, Caching::Revalidate),
];

/// The files under `/docs/`: Swagger UI (its version in the name, so cached for good) and the few
/// lines that start it. The icon is the portal's.
static DOCS_FILES: [Asset; 5] = [
    own!("docs.js", JS, Caching::Revalidate),
    own!("docs.css", CSS, Caching::Revalidate),
    vendored!(
        "swagger-ui-5.35.0.js",
        "swagger-ui-5.35.0.js.gz",
        JS,
        Encoding::Gzip
    ),
    vendored!(
        "swagger-ui-5.35.0.css",
        "swagger-ui-5.35.0.css.gz",
        CSS,
        Encoding::Gzip
    ),
    vendored!(
        "swagger-ui-5.35.0.LICENSE.txt",
        "swagger-ui-5.35.0.LICENSE.txt",
        TEXT,
        Encoding::Identity
    ),
];

/// `/`: a browser arriving at the deployment's root lands on the portal. Temporary (302), so an
/// operator may later serve something else there without browsers remembering this.
pub async fn to_portal() -> Response {
    (
        agentidp_shared::axum::http::StatusCode::FOUND,
        [(agentidp_shared::axum::http::header::LOCATION, "/portal")],
    )
        .into_response()
}

pub async fn portal(request: HeaderMap) -> Response {
    serve(&PORTAL_PAGE, &request, Policy::StrictTrustedTypes)
}

pub async fn portal_file(
    request: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Response {
    let name = name.map(|Path(name)| name).unwrap_or_default();
    serve_named(&PORTAL_FILES, &name, &request, Policy::StrictTrustedTypes)
}

pub async fn docs(request: HeaderMap) -> Response {
    serve(&DOCS_PAGE, &request, Policy::Strict)
}

pub async fn docs_file(request: HeaderMap, name: Result<Path<String>, PathRejection>) -> Response {
    let name = name.map(|Path(name)| name).unwrap_or_default();
    serve_named(&DOCS_FILES, &name, &request, Policy::Strict)
}
