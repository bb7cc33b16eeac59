//! The portal and the API reference as served by the native server: security headers, caching and
//! validators per kind of file, the vendored renderer's content coding, no inline code, the quick
//! start kept equal to the README's walkthrough, and pages outside the rate limits. (What a person
//! does on them is tested in a real browser: `tests/browser/`.)

use agentidp_tests::pages::{crawl, Fetched};
use agentidp_tests::{status_json, Server};

const README: &str = include_str!("../../README.md");

fn directives(csp: &str) -> Vec<(String, Vec<String>)> {
    csp.split(';')
        .filter_map(|directive| {
            let mut words = directive.split_whitespace();
            let name = words.next()?.to_owned();
            Some((name, words.map(str::to_owned).collect()))
        })
        .collect()
}

fn by_path<'a>(files: &'a [Fetched], path: &str) -> &'a Fetched {
    files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path} was not loaded"))
}

#[tokio::test]
async fn every_file_carries_a_strict_policy_and_fitting_cache_headers() {
    let server = Server::start().await;
    let crawl = crawl(&server, &["/portal", "/docs"]).await;
    assert!(crawl.foreign.is_empty(), "{:?}", crawl.foreign);
    assert!(
        crawl.fetched.len() >= 15,
        "only {} files",
        crawl.fetched.len()
    );
    for file in &crawl.fetched {
        let label = &file.path;
        assert_eq!(file.status, 200, "{label}");
        let policy = directives(file.header("content-security-policy"));
        let get = |name: &str| {
            policy
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{label}: no {name} in the policy"))
        };
        assert_eq!(get("default-src"), ["'self'"], "{label}");
        assert_eq!(get("script-src"), ["'self'"], "{label}");
        assert_eq!(get("style-src"), ["'self'"], "{label}");
        assert_eq!(get("connect-src"), ["'self'"], "{label}");
        assert_eq!(get("frame-ancestors"), ["'none'"], "{label}");
        assert_eq!(get("object-src"), ["'none'"], "{label}");
        assert_eq!(get("form-action"), ["'none'"], "{label}");
        for (name, sources) in &policy {
            for source in sources {
                assert!(
                    !source.contains("unsafe") && !source.contains("://") && source != "*",
                    "{label}: {name} allows {source}"
                );
            }
        }
        assert_eq!(file.header("x-content-type-options"), "nosniff", "{label}");
        assert_eq!(file.header("referrer-policy"), "no-referrer", "{label}");
        assert_eq!(file.header("x-frame-options"), "DENY", "{label}");
        assert_eq!(
            file.header("cross-origin-opener-policy"),
            "same-origin",
            "{label}"
        );

        let cache = file.header("cache-control");
        let content_type = file.header("content-type");
        if content_type.starts_with("text/html") {
            assert_eq!(cache, "no-store", "{label}");
            assert!(file.header("etag").is_empty(), "{label}");
        } else if label.contains("swagger-ui-") {
            assert_eq!(cache, "public, max-age=31536000, immutable", "{label}");
        } else {
            assert_eq!(cache, "no-cache", "{label}");
            assert!(file.header("etag").starts_with('"'), "{label}");
        }
        let expected_type = match label.rsplit_once('.').map(|(_, e)| e) {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("txt") => "text/plain; charset=utf-8",
            _ => "text/html; charset=utf-8",
        };
        assert_eq!(content_type, expected_type, "{label}");
    }
    // The portal alone also requires Trusted Types: it never builds HTML from strings.
    let portal = by_path(&crawl.fetched, "/portal");
    assert!(portal
        .header("content-security-policy")
        .contains("require-trusted-types-for 'script'"));
}

#[tokio::test]
async fn the_pages_contain_no_inline_code() {
    let server = Server::start().await;
    let crawl = crawl(&server, &["/portal", "/docs"]).await;
    for file in crawl
        .fetched
        .iter()
        .filter(|f| f.header("content-type").starts_with("text/html"))
    {
        let html = String::from_utf8_lossy(&file.body);
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(
                tag.contains(" src=\""),
                "{}: inline script {tag}",
                file.path
            );
        }
        assert!(!html.contains("<style"), "{}: inline style", file.path);
        assert!(
            !html.contains(" style=\""),
            "{}: style attribute",
            file.path
        );
        for handler in [
            " onclick=",
            " onload=",
            " onerror=",
            " onsubmit=",
            "javascript:",
        ] {
            assert!(!html.contains(handler), "{}: {handler}", file.path);
        }
    }
    // The portal's own scripts never assign HTML strings (Trusted Types would refuse them).
    for file in crawl
        .fetched
        .iter()
        .filter(|f| f.path.starts_with("/portal/") && f.path.ends_with(".js"))
    {
        let script = String::from_utf8_lossy(&file.body);
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!script.contains(sink), "{} uses {sink}", file.path);
        }
        for storage in [
            "localStorage",
            "sessionStorage",
            "document.cookie",
            "indexedDB",
        ] {
            assert!(!script.contains(storage), "{} touches {storage}", file.path);
        }
    }
}

#[tokio::test]
async fn files_revalidate_and_the_renderer_is_sent_compressed() {
    let server = Server::start().await;
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut request = server.http.get(server.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let first = get("/portal/portal.js", &[]).await.unwrap();
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = get("/portal/portal.js", &[("if-none-match", &etag)])
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let stale = get("/portal/portal.js", &[("if-none-match", "\"stale\"")])
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);

    let script = "/docs/swagger-ui-5.35.0.js";
    let gzipped = get(script, &[("accept-encoding", "gzip, deflate, br")])
        .await
        .unwrap();
    assert_eq!(gzipped.status(), 200);
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["vary"], "accept-encoding");
    let body = gzipped.bytes().await.unwrap();
    assert_eq!(&body[..2], &[0x1f, 0x8b], "not gzip");
    assert!(body.len() > 100_000, "{} bytes", body.len());
    // RFC 9110 §12.5.3: no Accept-Encoding accepts any coding; one that refuses gzip gets 406.
    let unspecified = get(script, &[]).await.unwrap();
    assert_eq!(unspecified.status(), 200);
    let refused = get(script, &[("accept-encoding", "identity")])
        .await
        .unwrap();
    let (status, problem) = status_json(refused).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (406, Some("not_acceptable"))
    );

    let missing = get("/portal/nothing.js", &[]).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("content-security-policy"));
    let (_, problem) = status_json(missing).await;
    assert_eq!(problem["code"], "not_found");
    // Only names of the page's own files: no path tricks reach anything else.
    for path in [
        "/portal/..%2Fdocs.html",
        "/portal/%2e%2e%2fCargo.toml",
        "/docs/portal.html",
    ] {
        let response = get(path, &[]).await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

/// The README's two-minute walkthrough, line by line.
fn walkthrough() -> Vec<&'static str> {
    let section = README
        .split("## Two-minute walkthrough")
        .nth(1)
        .expect("the README has a walkthrough");
    let block = section
        .split("```bash\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the walkthrough has a bash block");
    block.lines().filter(|l| !l.trim().is_empty()).collect()
}

fn unescape(html: &str) -> String {
    html.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn the_quick_start_is_the_readme_walkthrough() {
    let server = Server::start().await;
    let html = server
        .http
        .get(server.url("/portal"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The code blocks, in order, as one text.
    let code: String = html
        .split("<pre id=\"code-")
        .skip(1)
        .map(|block| {
            let start = block.find("<code>").unwrap() + "<code>".len();
            let end = block.find("</code>").unwrap();
            unescape(&block[start..end])
        })
        .collect::<Vec<_>>()
        .join("\n");
    let quick_start: Vec<&str> = code.lines().filter(|l| !l.trim().is_empty()).collect();
    let readme = walkthrough();
    assert!(readme.len() > 20, "{readme:?}");
    assert_eq!(
        quick_start, readme,
        "the portal's quick start (portal/src/portal.html) differs from the README's walkthrough"
    );
}

#[tokio::test]
async fn pages_are_not_rate_limited() {
    let server = Server::start_with(&[("AGENTIDP_RATE_LIMIT_IP_PER_MINUTE", "3")]).await;
    for _ in 0..10 {
        for path in ["/portal", "/portal/portal.js", "/docs"] {
            let response = server.http.get(server.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert!(!response.headers().contains_key("ratelimit-limit"));
        }
    }
    // The API behind them still is.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = server
            .http
            .get(server.url("/v1/marketplace/agents"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}
