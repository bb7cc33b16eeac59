//! The browser pages as a browser would load them: a page, every file its HTML names, and every
//! module its scripts import, fetched from the deployment, with the references that would leave
//! the origin collected instead of followed.

use std::collections::{BTreeSet, VecDeque};

use reqwest::header::HeaderMap;

use crate::Server;

/// One fetched page or file.
pub struct Fetched {
    pub path: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Fetched {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// What a crawl found: everything fetched, and the references to other origins (never fetched).
pub struct Crawl {
    pub fetched: Vec<Fetched>,
    pub foreign: Vec<String>,
}

/// The values of `name="…"` attributes in some HTML.
fn attributes<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .filter_map(|(i, _)| {
            let rest = &html[i + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// The specifiers of a module's static and dynamic imports (`from "./x.js"`, `import("./x.js")`).
fn imports(script: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for needle in ["from \"", "import(\""] {
        for (i, _) in script.match_indices(needle) {
            let rest = &script[i + needle.len()..];
            if let Some(end) = rest.find('"') {
                found.push(&rest[..end]);
            }
        }
    }
    found
}

/// `reference` resolved against the page or module at `base` (both absolute paths).
fn resolve(base: &str, reference: &str) -> String {
    match reference.strip_prefix("./") {
        Some(relative) => format!("{}/{relative}", &base[..base.rfind('/').unwrap_or(0)]),
        None => reference.to_owned(),
    }
}

fn is_foreign(reference: &str) -> bool {
    let lower = reference.to_ascii_lowercase();
    lower.starts_with("http:") || lower.starts_with("https:") || lower.starts_with("//")
}

/// Loads `pages` and what they pull in: `src` and `href` under `/portal/` or `/docs/` (links to
/// the API itself are not part of the page), and the modules their scripts import.
pub async fn crawl(server: &Server, pages: &[&str]) -> Crawl {
    let mut queue: VecDeque<String> = pages.iter().map(|p| (*p).to_owned()).collect();
    let mut seen: BTreeSet<String> = queue.iter().cloned().collect();
    let mut crawl = Crawl {
        fetched: Vec::new(),
        foreign: Vec::new(),
    };
    while let Some(path) = queue.pop_front() {
        let response = server
            .http
            .get(server.url(&path))
            // No Accept-Encoding, which admits any coding (RFC 9110 §12.5.3): the files stored
            // compressed come gzipped, while workerd, which compresses text itself for clients
            // that ask, leaves the pages and scripts readable for the crawl.
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let is_gzip = headers.get("content-encoding").is_some();
        let text = if is_gzip {
            String::new()
        } else {
            String::from_utf8_lossy(&body).into_owned()
        };
        let mut references: Vec<String> = Vec::new();
        if content_type.starts_with("text/html") {
            for reference in attributes(&text, "src")
                .into_iter()
                .chain(attributes(&text, "href"))
            {
                if is_foreign(reference) {
                    crawl.foreign.push(format!("{path}: {reference}"));
                } else if reference.starts_with("/portal/") || reference.starts_with("/docs/") {
                    references.push(reference.to_owned());
                }
            }
        } else if content_type.starts_with("text/javascript") {
            for specifier in imports(&text) {
                if is_foreign(specifier) {
                    crawl.foreign.push(format!("{path}: {specifier}"));
                } else {
                    references.push(resolve(&path, specifier));
                }
            }
        }
        for reference in references {
            if seen.insert(reference.clone()) {
                queue.push_back(reference);
            }
        }
        crawl.fetched.push(Fetched {
            path,
            status,
            headers,
            body,
        });
    }
    crawl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found_and_resolved() {
        let html = r#"<link rel="stylesheet" href="/portal/a.css"><script type="module" src="/portal/a.js"></script>"#;
        assert_eq!(attributes(html, "href"), ["/portal/a.css"]);
        assert_eq!(attributes(html, "src"), ["/portal/a.js"]);
        let script = "import { x } from \"./b.js\";\nconst m = await import(\"./c.js\");";
        assert_eq!(imports(script), ["./b.js", "./c.js"]);
        assert_eq!(resolve("/portal/a.js", "./b.js"), "/portal/b.js");
        assert!(is_foreign("https://cdn.example/x.js") && is_foreign("//cdn.example/x.js"));
        assert!(!is_foreign("/portal/x.js"));
    }
}
