//! The public marketplace end to end: only published, active agents of any organization, found
//! without credentials, and nothing private about them.

use std::collections::HashSet;

use agentidp_tests::{status_json, Org, Server};
use serde_json::{json, Value};

/// Registers an agent and returns its id.
async fn register(server: &Server, org: &Org, body: Value) -> String {
    let (status, agent) = status_json(server.post("/v1/agents", &org.token, body).await).await;
    assert_eq!(status, 201, "{agent}");
    agent["id"].as_str().unwrap().to_owned()
}

async fn public(
    server: &Server,
    name: &str,
    agent_type: &str,
    capabilities: &[&str],
    org: &Org,
) -> String {
    register(
        server,
        org,
        json!({
            "name": name,
            "agent_type": agent_type,
            "capabilities": capabilities,
            "visibility": "public",
            "email": format!("{name}@example.test"),
            "owner": "team-secret",
            "metadata": { "internal": "do not publish" },
            "version": "1.2.3",
            "deployment_env": "production",
        }),
    )
    .await
}

/// Anonymous GET.
async fn browse(server: &Server, path: &str) -> (u16, Value) {
    status_json(server.http.get(server.url(path)).send().await.unwrap()).await
}

fn names(page: &Value) -> HashSet<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// RFC 3339 UTC text with its fraction padded to nanoseconds, so strings order as instants do.
fn sortable(timestamp: &str) -> String {
    let (seconds, fraction) = timestamp
        .trim_end_matches('Z')
        .split_once('.')
        .unwrap_or((timestamp.trim_end_matches('Z'), ""));
    format!("{seconds}.{fraction:0<9}")
}

#[tokio::test]
async fn only_published_active_agents_of_every_organization_are_listed() {
    let server = Server::start().await;
    let acme = server.bootstrap("acme").await;
    let globex = server.bootstrap("globex").await;
    public(&server, "Translator", "nlp", &["translate"], &acme).await;
    public(
        &server,
        "Summarizer",
        "nlp",
        &["summarize", "translate"],
        &globex,
    )
    .await;
    let paused = public(&server, "Paused", "nlp", &[], &acme).await;
    let retired = public(&server, "Retired", "nlp", &[], &globex).await;
    register(
        &server,
        &acme,
        json!({ "name": "Hidden", "agent_type": "nlp" }),
    )
    .await;
    register(
        &server,
        &acme,
        json!({ "name": "Private", "agent_type": "nlp", "visibility": "private" }),
    )
    .await;

    let response = server
        .patch(
            &format!("/v1/agents/{paused}"),
            &acme.token,
            json!({ "status": "suspended" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(server
        .delete(&format!("/v1/agents/{retired}"), &globex.token)
        .await
        .status()
        .is_success());

    let (status, page) = browse(&server, "/v1/marketplace/agents").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(names(&page), set(&["Translator", "Summarizer"]));
    assert!(page["next_cursor"].is_null());

    // Newest first.
    let created: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| sortable(a["created_at"].as_str().unwrap()))
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");

    for (path, expected) in [
        // Words match names, types and capabilities (Summarizer declares `translate`).
        (
            "/v1/marketplace/agents?q=TRANS",
            vec!["Translator", "Summarizer"],
        ),
        (
            "/v1/marketplace/agents?q=transl",
            vec!["Translator", "Summarizer"],
        ),
        (
            "/v1/marketplace/agents?q=nl",
            vec!["Translator", "Summarizer"],
        ),
        // Words, not substrings.
        ("/v1/marketplace/agents?q=izer", vec![]),
        ("/v1/marketplace/agents?q=%25", vec![]),
        ("/v1/marketplace/agents?q=_", vec![]),
        (
            "/v1/marketplace/agents?agent_type=nlp",
            vec!["Translator", "Summarizer"],
        ),
        ("/v1/marketplace/agents?agent_type=NLP", vec![]),
        (
            "/v1/marketplace/agents?capability=translate",
            vec!["Translator", "Summarizer"],
        ),
        (
            "/v1/marketplace/agents?capability=summarize",
            vec!["Summarizer"],
        ),
        ("/v1/marketplace/agents?capability=summ", vec![]),
        (
            "/v1/marketplace/agents?q=sum&capability=translate",
            vec!["Summarizer"],
        ),
    ] {
        let (status, page) = browse(&server, path).await;
        assert_eq!(status, 200, "{path}: {page}");
        assert_eq!(names(&page), set(&expected), "{path}");
    }
}

#[tokio::test]
async fn a_listing_reveals_nothing_private() {
    let server = Server::start().await;
    let org = server.bootstrap("discreet").await;
    let id = public(&server, "Open", "search", &["web:search"], &org).await;
    let private = register(
        &server,
        &org,
        json!({ "name": "Closed", "agent_type": "search" }),
    )
    .await;

    let (status, agent) = browse(&server, &format!("/v1/marketplace/agents/{id}")).await;
    assert_eq!(status, 200, "{agent}");
    let fields: HashSet<&str> = agent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        HashSet::from([
            "id",
            "did",
            "name",
            "description",
            "agent_type",
            "version",
            "capabilities",
            "tags",
            "skills",
            "homepage_url",
            "a2a_url",
            "deployment_env",
            "created_at",
        ])
    );
    assert_eq!(agent["capabilities"], json!(["web:search"]));
    assert_eq!(agent["version"], "1.2.3");
    assert_eq!(agent["deployment_env"], "production");
    let (_, page) = browse(&server, "/v1/marketplace/agents").await;
    assert_eq!(page["data"][0], agent);
    let text = page.to_string();
    for secret in [
        "example.test",
        "team-secret",
        "do not publish",
        org.id.as_str(),
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }

    for missing in [
        private.as_str(),
        "00000000-0000-4000-8000-000000000000",
        "not-an-id",
        "%FF",
    ] {
        let (status, body) = browse(&server, &format!("/v1/marketplace/agents/{missing}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "{missing}"
        );
    }
}

#[tokio::test]
async fn search_pages_with_a_cursor() {
    let server = Server::start().await;
    let org = server.bootstrap("prolific").await;
    let mut published = HashSet::new();
    for i in 0..7 {
        let name = format!("bot-{i}");
        public(&server, &name, "worker", &[], &org).await;
        published.insert(name);
    }
    let mut seen = Vec::new();
    let mut path = "/v1/marketplace/agents?limit=3&q=bot".to_owned();
    loop {
        let (status, page) = browse(&server, &path).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["data"].as_array().unwrap().len() <= 3);
        seen.extend(names(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/marketplace/agents?limit=3&q=bot&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), published);
}

#[tokio::test]
async fn malformed_searches_are_refused_by_name() {
    let server = Server::start().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=500", "limit"),
        ("limit=ten", "limit"),
        ("cursor=bogus", "cursor"),
        ("q=", "q"),
    ] {
        let (status, body) = browse(&server, &format!("/v1/marketplace/agents?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["code"], "invalid_field");
        assert_eq!(body["field"], field, "{query}");
    }
    let long = "x".repeat(201);
    let (status, body) = browse(&server, &format!("/v1/marketplace/agents?q={long}")).await;
    assert_eq!((status, body["field"].as_str()), (400, Some("q")));
    let (status, body) = browse(&server, "/v1/marketplace/agents?org_id=x").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_field"))
    );
}

/// Publishes an agent with what it says about itself.
async fn publish(server: &Server, org: &Org, fields: Value) -> String {
    let mut body = json!({ "agent_type": "assistant", "visibility": "public" });
    for (key, value) in fields.as_object().unwrap() {
        body[key] = value.clone();
    }
    register(server, org, body).await
}

fn ordered_names(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn agents_publish_a_description_tags_links_and_skills() {
    let server = Server::start().await;
    let org = server.bootstrap("describer").await;
    let skills = json!([{
        "id": "translate",
        "name": "Translate",
        "description": "Translates documents between languages",
        "tags": ["language"],
        "examples": ["Translate this page into French"],
    }]);
    let created = server
        .create_agent(
            &org,
            json!({
                "name": "Polyglot",
                "agent_type": "nlp",
                "description": "Reads and writes forty languages.",
                "tags": ["i18n", "documents", "i18n"],
                "homepage_url": "https://polyglot.example/",
                "a2a_url": "https://polyglot.example/a2a",
                "skills": skills,
            }),
        )
        .await;
    assert_eq!(created["description"], "Reads and writes forty languages.");
    assert_eq!(created["tags"], json!(["i18n", "documents"]));
    assert_eq!(created["skills"], skills);
    assert_eq!(created["a2a_url"], "https://polyglot.example/a2a");
    let id = created["id"].as_str().unwrap();

    let (status, patched) = status_json(
        server
            .patch(
                &format!("/v1/agents/{id}"),
                &org.token,
                json!({ "description": "Forty-two languages.", "homepage_url": null, "tags": ["i18n"] }),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["homepage_url"], Value::Null);
    assert_eq!(patched["tags"], json!(["i18n"]));
    let (_, read) = status_json(server.get(&format!("/v1/agents/{id}"), &org.token).await).await;
    assert_eq!(read["description"], "Forty-two languages.");
    assert_eq!(read["skills"], skills);

    for (body, field) in [
        (json!({ "tags": ["Not OK"] }), "tags[0]"),
        (json!({ "description": "x".repeat(2_001) }), "description"),
        (json!({ "a2a_url": "http://polyglot.example/" }), "a2a_url"),
        (
            json!({ "homepage_url": "javascript:alert(1)" }),
            "homepage_url",
        ),
        (
            json!({ "skills": [{ "id": "a", "name": "A", "description": "" }] }),
            "skills[0].description",
        ),
    ] {
        let (status, problem) = status_json(
            server
                .patch(&format!("/v1/agents/{id}"), &org.token, body.clone())
                .await,
        )
        .await;
        assert_eq!(
            (status, problem["field"].as_str()),
            (400, Some(field)),
            "{body}: {problem}"
        );
    }
}

#[tokio::test]
async fn words_rank_a_name_above_a_description_and_find_skills_and_tags() {
    let server = Server::start().await;
    let org = server.bootstrap("ranker").await;
    publish(
        &server,
        &org,
        json!({ "name": "Helper", "description": "Knows the weather everywhere." }),
    )
    .await;
    publish(
        &server,
        &org,
        json!({ "name": "Weather Oracle", "description": "Forecasts." }),
    )
    .await;
    publish(
        &server,
        &org,
        json!({
            "name": "Planner",
            "tags": ["calendar"],
            "skills": [{ "id": "s", "name": "Schedule", "description": "Books meetings around rain and weather", "tags": [] }],
        }),
    )
    .await;
    publish(
        &server,
        &org,
        json!({ "name": "Unrelated", "description": "Sorts socks." }),
    )
    .await;

    let (status, page) = browse(&server, "/v1/marketplace/agents?q=weather").await;
    assert_eq!(status, 200, "{page}");
    let found = ordered_names(&page);
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(
        found[0], "Weather Oracle",
        "a name match ranks first: {found:?}"
    );
    // The last word is a prefix; skills and tags are searched.
    let (_, page) = browse(&server, "/v1/marketplace/agents?q=books%20meet").await;
    assert_eq!(ordered_names(&page), ["Planner"]);
    let (_, page) = browse(&server, "/v1/marketplace/agents?q=calend").await;
    assert_eq!(ordered_names(&page), ["Planner"]);
}

#[tokio::test]
async fn fts_syntax_in_the_users_text_is_only_text() {
    let server = Server::start().await;
    let org = server.bootstrap("literal").await;
    publish(
        &server,
        &org,
        json!({ "name": "Near Or Not", "description": "and more" }),
    )
    .await;
    for text in [
        "\"",
        "\"unbalanced",
        "NEAR(near or)",
        "name:near",
        "-not",
        "^near",
        "*",
        "near OR",
        "a AND",
        "NOT",
        "(",
        "{name}: x",
        "near\"*\"",
        "💥",
        "%00",
    ] {
        let path = format!("/v1/marketplace/agents?q={}", percent_encode(text));
        let (status, page) = browse(&server, &path).await;
        assert_eq!(status, 200, "{text}: {page}");
    }
    // Operators are words: "near OR not" needs all three words, which this agent has.
    let (_, page) = browse(&server, "/v1/marketplace/agents?q=near%20OR%20not").await;
    assert_eq!(ordered_names(&page), ["Near Or Not"]);
    let (_, page) = browse(&server, "/v1/marketplace/agents?q=near%20OR%20absent").await;
    assert!(ordered_names(&page).is_empty());
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn filters_narrow_exactly_and_facets_count_every_match() {
    let server = Server::start().await;
    let org = server.bootstrap("facets").await;
    publish(&server, &org, json!({ "name": "A", "agent_type": "nlp", "capabilities": ["web:search", "docs:read"], "tags": ["search", "web"], "deployment_env": "production" })).await;
    publish(&server, &org, json!({ "name": "B", "agent_type": "nlp", "capabilities": ["web:search"], "tags": ["search"] })).await;
    publish(&server, &org, json!({ "name": "C", "agent_type": "vision", "capabilities": ["web-search"], "tags": ["web-search"] })).await;
    for (query, expected) in [
        ("capability=web:search", vec!["A", "B"]),
        ("capability=web:search&capability=docs:read", vec!["A"]),
        ("capability=web-search", vec!["C"]),
        ("tag=search", vec!["A", "B"]),
        ("tag=web", vec!["A"]),
        ("tag=web-search", vec!["C"]),
        ("agent_type=vision", vec!["C"]),
        ("deployment_env=production", vec!["A"]),
        ("deployment_env=staging", vec![]),
        ("q=a&agent_type=nlp", vec!["A"]),
    ] {
        let (status, page) = browse(&server, &format!("/v1/marketplace/agents?{query}")).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(names(&page), set(&expected), "{query}");
    }
    let (_, page) = browse(
        &server,
        "/v1/marketplace/agents?facets=agent_type,tags&limit=1",
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["facets"]["counted"], 3);
    assert_eq!(
        page["facets"]["agent_type"],
        json!([{ "value": "nlp", "count": 2 }, { "value": "vision", "count": 1 }])
    );
    assert_eq!(
        page["facets"]["tags"],
        json!([
            { "value": "search", "count": 2 },
            { "value": "web", "count": 1 },
            { "value": "web-search", "count": 1 },
        ])
    );
    let (_, page) = browse(&server, "/v1/marketplace/agents?tag=web&facets=tags").await;
    assert_eq!(
        page["facets"],
        json!({ "counted": 1, "tags": [{ "value": "search", "count": 1 }, { "value": "web", "count": 1 }] })
    );
    // Filtered pages, newest first, follow their cursor.
    let (_, first) = browse(&server, "/v1/marketplace/agents?tag=search&limit=1").await;
    assert_eq!(ordered_names(&first), ["B"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = browse(
        &server,
        &format!("/v1/marketplace/agents?tag=search&limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(ordered_names(&second), ["A"]);
    assert!(second["next_cursor"].is_null());
    let (_, page) = browse(&server, "/v1/marketplace/agents").await;
    assert!(page.get("facets").is_none());
}

#[tokio::test]
async fn relevance_pages_have_no_duplicates_or_gaps_while_agents_are_added() {
    let server = Server::start().await;
    let org = server.bootstrap("pager").await;
    let mut expected = HashSet::new();
    for i in 0..12 {
        // Descriptions of different lengths give different scores; some tie.
        let description = format!("robot {}", "words ".repeat(i % 4));
        let name = format!("agent-{i}");
        publish(
            &server,
            &org,
            json!({ "name": name, "description": description }),
        )
        .await;
        expected.insert(name);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/v1/marketplace/agents?q=robot&limit=5".to_owned();
    let mut added = 0;
    loop {
        let (status, page) = browse(&server, &path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ordered_names(&page));
        // More agents matching better keep arriving between pages.
        for _ in 0..3 {
            publish(
                &server,
                &org,
                json!({ "name": format!("robot robot {added}"), "description": "robot" }),
            )
            .await;
            added += 1;
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/marketplace/agents?q=robot&limit=5&cursor={cursor}")
            }
            None => break,
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates: {seen:?}");
    assert_eq!(unique, expected, "{seen:?}");
}

#[tokio::test]
async fn answers_carry_a_strong_etag_and_revalidate_with_304() {
    let server = Server::start().await;
    let org = server.bootstrap("cached").await;
    let id = publish(&server, &org, json!({ "name": "Cached" })).await;
    for path in [
        "/v1/marketplace/agents?q=cached".to_owned(),
        format!("/v1/marketplace/agents/{id}"),
    ] {
        let first = server.http.get(server.url(&path)).send().await.unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(
            first.headers()["cache-control"],
            "public, max-age=60, stale-while-revalidate=300"
        );
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
        let again = server
            .http
            .get(server.url(&path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());
        let other = server
            .http
            .get(server.url(&path))
            .header("if-none-match", "\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 200);
    }
    // A change of the agent changes the validator.
    let (_, before) = status_json(
        server
            .http
            .get(server.url(&format!("/v1/marketplace/agents/{id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    server
        .patch(
            &format!("/v1/agents/{id}"),
            &org.token,
            json!({ "description": "now described" }),
        )
        .await;
    let response = server
        .http
        .get(server.url(&format!("/v1/marketplace/agents/{id}")))
        .send()
        .await
        .unwrap();
    let (_, after) = status_json(response).await;
    assert_ne!(before, after);
}

#[tokio::test]
async fn a_withdrawn_or_suspended_agent_is_gone_at_once() {
    let server = Server::start().await;
    let org = server.bootstrap("withdrawing").await;
    let other = server.bootstrap("bystander").await;
    let id = publish(
        &server,
        &org,
        json!({ "name": "Ephemeral", "description": "here now" }),
    )
    .await;
    register(
        &server,
        &other,
        json!({ "name": "Ephemeral twin", "agent_type": "x" }),
    )
    .await;
    let (_, page) = browse(&server, "/v1/marketplace/agents?q=ephemeral").await;
    assert_eq!(
        ordered_names(&page),
        ["Ephemeral"],
        "another organization's private agent stays hidden"
    );
    for (change, back) in [
        (
            json!({ "visibility": "private" }),
            json!({ "visibility": "public" }),
        ),
        (
            json!({ "status": "suspended" }),
            json!({ "status": "active" }),
        ),
    ] {
        let response = server
            .patch(&format!("/v1/agents/{id}"), &org.token, change.clone())
            .await;
        assert_eq!(response.status(), 200);
        let (_, page) = browse(&server, "/v1/marketplace/agents?q=ephemeral").await;
        assert!(ordered_names(&page).is_empty(), "{change}");
        let (status, _) = browse(&server, &format!("/v1/marketplace/agents/{id}")).await;
        assert_eq!(status, 404, "{change}");
        server
            .patch(&format!("/v1/agents/{id}"), &org.token, back)
            .await;
        let (_, page) = browse(&server, "/v1/marketplace/agents?q=ephemeral").await;
        assert_eq!(ordered_names(&page), ["Ephemeral"]);
    }
    server.delete(&format!("/v1/agents/{id}"), &org.token).await;
    let (_, page) = browse(&server, "/v1/marketplace/agents?q=ephemeral").await;
    assert!(ordered_names(&page).is_empty());
}

/// The deployment's marketplace version, as the database holds it.
async fn marketplace_version(server: &Server) -> i64 {
    let db = agentidp_tests::open_db(&server.data_dir.join("agentidp.db")).await;
    let mut rows = db
        .query("SELECT version FROM marketplace_version WHERE id = 1", ())
        .await
        .unwrap();
    rows.next().await.unwrap().unwrap().get(0).unwrap()
}

/// What keys the reuse of searches (each instance's memo of rankings and facet counts, the
/// Workers cache) moves with every change a listing shows and with nothing else; a search repeated
/// after a change answers from the change.
#[tokio::test]
async fn the_marketplace_version_moves_with_every_listed_change_and_nothing_else() {
    let server = Server::start().await;
    let org = server.bootstrap("versioned").await;
    let start = marketplace_version(&server).await;
    let id = publish(
        &server,
        &org,
        json!({ "name": "Heron", "description": "wades", "tags": ["alpha"] }),
    )
    .await;
    let published = marketplace_version(&server).await;
    assert!(published > start, "publishing moves it");
    let search = "/v1/marketplace/agents?q=heron&facets=tags";
    let (_, page) = browse(&server, search).await;
    assert_eq!(page["facets"]["tags"][0]["value"], "alpha", "{page}");

    let private = register(
        &server,
        &org,
        json!({ "name": "Heron twin", "agent_type": "x" }),
    )
    .await;
    let patch = |id: String, body: Value| {
        let server = &server;
        let org = &org;
        async move {
            let response = server
                .patch(&format!("/v1/agents/{id}"), &org.token, body)
                .await;
            assert_eq!(response.status(), 200);
        }
    };
    patch(
        private.clone(),
        json!({ "name": "Heron triplet", "description": "hidden" }),
    )
    .await;
    patch(
        id.clone(),
        json!({ "metadata": { "internal": "x" }, "email": "h@example.test" }),
    )
    .await;
    assert_eq!(
        marketplace_version(&server).await,
        published,
        "private agents and unlisted fields leave it alone"
    );

    let mut last = published;
    for change in [
        json!({ "tags": ["beta"] }),
        json!({ "version": "2.0.0" }),
        json!({ "deployment_env": "staging" }),
        json!({ "visibility": "private" }),
        json!({ "visibility": "public" }),
    ] {
        patch(id.clone(), change.clone()).await;
        let now = marketplace_version(&server).await;
        assert!(now > last, "{change} moves it");
        last = now;
    }
    let (_, page) = browse(&server, search).await;
    assert_eq!(ordered_names(&page), ["Heron"], "{page}");
    assert_eq!(page["facets"]["tags"][0]["value"], "beta", "{page}");
    assert_eq!(page["data"][0]["version"], "2.0.0", "{page}");
}
