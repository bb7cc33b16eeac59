//! `agentidp doctor`: checks a deployment end to end from outside, as a user would: metadata,
//! keys, health, a token round trip, and that every route of the table reaches a function that
//! serves it (a descriptor's wrong or missing route shows up here).

use std::time::Duration;

use agentidp_client::{Client, ClientCredentials, TokenRequest};
use agentidp_shared::http::routes::{Access, Route, ROUTES};
use serde_json::Value;

use super::exit::CliError;
use super::hiargs::HiArgs;
use super::output::Printer;

/// One check's outcome.
struct Check {
    name: String,
    outcome: Result<String, String>,
}

pub async fn doctor(hi: &HiArgs, printer: Printer) -> Result<(), CliError> {
    let base = hi.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CliError::failure(e.to_string()))?;
    let mut checks = Vec::new();
    let get = |path: &str| {
        let request = http.get(format!("{base}{path}"));
        async move { answer(request).await }
    };

    // Reachable at all, and this is AgentIdP: everything else depends on it.
    let metadata = get("/.well-known/oauth-authorization-server").await;
    let reachable = metadata.is_ok();
    checks.push(Check {
        name: "metadata".into(),
        outcome: metadata.and_then(|(status, body)| {
            let issuer = body["issuer"].as_str().unwrap_or_default();
            match status {
                200 if issuer == base => Ok(format!("issuer {issuer}")),
                200 => Err(format!(
                    "the issuer is `{issuer}`, not {base}: set AGENTIDP_ISSUER to the public URL \
                     on every function"
                )),
                _ => Err(describe(status, &body)),
            }
        }),
    });
    if reachable {
        checks.push(Check {
            name: "jwks".into(),
            outcome: get("/.well-known/jwks.json")
                .await
                .and_then(|(status, body)| {
                    let keys = body["keys"].as_array().map_or(0, Vec::len);
                    if status == 200 && keys > 0 {
                        Ok(format!("{keys} key(s) published"))
                    } else {
                        Err(describe(status, &body))
                    }
                }),
        });
        checks.push(Check {
            name: "health".into(),
            outcome: get("/health/detailed")
                .await
                .and_then(|(status, body)| match status {
                    200 => Ok("database and key-value store answer".into()),
                    _ => Err(format!(
                        "{}: {}",
                        describe(status, &body),
                        unhealthy(&body["checks"])
                    )),
                }),
        });
        checks.push(Check {
            name: "token round trip".into(),
            outcome: round_trip(hi).await,
        });
        let mut wrong = Vec::new();
        for route in ROUTES {
            if let Err(why) = route_reaches_its_function(&http, &base, route).await {
                wrong.push(why);
            }
        }
        checks.push(Check {
            name: "routes".into(),
            outcome: if wrong.is_empty() {
                Ok(format!(
                    "all {} routes reach a function serving them",
                    ROUTES.len()
                ))
            } else {
                Err(format!(
                    "{} (regenerate the descriptors with `agentidp edge init` and redeploy)",
                    wrong.join("; ")
                ))
            },
        });
    }

    let failed = checks.iter().filter(|c| c.outcome.is_err()).count();
    match printer.format {
        super::defs::OutputFormat::Json => {
            let report: Vec<Value> = checks
                .iter()
                .map(|c| match &c.outcome {
                    Ok(detail) => {
                        serde_json::json!({ "check": c.name, "ok": true, "detail": detail })
                    }
                    Err(detail) => {
                        serde_json::json!({ "check": c.name, "ok": false, "detail": detail })
                    }
                })
                .collect();
            printer.json(&serde_json::json!({ "url": base, "checks": report }))?;
        }
        super::defs::OutputFormat::Table => {
            for check in &checks {
                let (mark, detail) = match &check.outcome {
                    Ok(detail) => ("ok  ", detail),
                    Err(detail) => ("FAIL", detail),
                };
                printer.line(&format!("{mark}  {:<17} {detail}", check.name))?;
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError::failure(format!(
            "{failed} check(s) failed against {base}"
        )))
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Result<(u16, Value), String> {
    let response = request.send().await.map_err(|e| {
        format!("no answer ({e}): is the deployment up and `--url` right? For the local server run `agentidp serve`")
    })?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}

fn describe(status: u16, body: &Value) -> String {
    match (body["code"].as_str(), body["detail"].as_str()) {
        (Some(code), Some(detail)) => format!("{status} {code}: {detail}"),
        _ => {
            let text = body.to_string();
            format!(
                "answered {status}: {}",
                text.chars().take(160).collect::<String>()
            )
        }
    }
}

/// Each failing check with where its settings live: a store that does not answer is nearly
/// always a wrong URL or a missing or stale secret on one of the functions.
fn unhealthy(checks: &Value) -> String {
    checks
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, c)| c["status"] != "ok")
        .map(|(name, c)| {
            let error = c["error"].as_str().unwrap_or("down");
            let settings = match name.as_str() {
                "database" => {
                    " (check AGENTIDP_DATABASE_URL and the secret \
                               AGENTIDP_DATABASE_AUTH_TOKEN on every function, and that the \
                               database is up)"
                }
                "key_value" => {
                    " (check UPSTASH_REDIS_REST_URL and the secret \
                                UPSTASH_REDIS_REST_TOKEN on every function, or REDIS_URL \
                                natively)"
                }
                _ => "",
            };
            format!("{name}: {error}{settings}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// With credentials (a profile, or the environment): a token and a call with it. Without, where
/// sign-up is open: a throwaway organization's admin. Else: why it could not be tried.
async fn round_trip(hi: &HiArgs) -> Result<String, String> {
    let client = Client::new(&hi.url).map_err(|e| e.to_string())?;
    let (credentials, how) = match &hi.credentials {
        Some(credentials) => (credentials.clone(), "with the given credentials"),
        None => match client.create_organization("agentidp-doctor", None).await {
            Ok(created) => (
                ClientCredentials {
                    client_id: created.admin_credential.client_id,
                    client_secret: created.admin_credential.client_secret,
                },
                "with a throwaway organization (sign-up is open)",
            ),
            Err(e)
                if e.api()
                    .and_then(|a| a.code())
                    .is_some_and(|c| c.starts_with("signup")) =>
            {
                return Err(
                    "sign-up is closed and no credentials were given: `agentidp login --url URL` \
                     (or set AGENTIDP_CLIENT_ID and AGENTIDP_CLIENT_SECRET), then run doctor again"
                        .into(),
                )
            }
            Err(e) => return Err(e.to_string()),
        },
    };
    let token = client
        .token(&credentials, &TokenRequest::default())
        .await
        .map_err(|e| e.to_string())?;
    let verified = client
        .introspect(&credentials, &token.access_token)
        .await
        .map_err(|e| e.to_string())?;
    if verified.active {
        Ok(format!("token issued and introspected active {how}"))
    } else {
        Err("a token just issued introspects as inactive: the functions disagree on keys or the database".into())
    }
}

/// Without credentials, a route answers the way its access level promises, from a function that
/// serves it: never another function's `route_not_found`, and never a page the platform made up.
async fn route_reaches_its_function(
    http: &reqwest::Client,
    base: &str,
    route: &Route,
) -> Result<(), String> {
    let path = agentidp_shared::http::routes::concrete_path(route);
    let method =
        reqwest::Method::from_bytes(route.method.as_str().as_bytes()).map_err(|e| e.to_string())?;
    let mut request = http.request(method, format!("{base}{path}"));
    if route.access == Access::Client {
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=not-a-token");
    }
    let label = format!("{} {}", route.method.as_str(), route.path);
    let (status, body) = answer(request).await.map_err(|e| format!("{label}: {e}"))?;
    let code = body["code"].as_str().unwrap_or_default();
    let oauth_error = body["error"].as_str().is_some();
    // Every refusal AgentIdP makes is JSON; a non-JSON error came from the platform (an unrouted
    // path, a missing Worker). Successes may be text (a public key, a page).
    let from_agentidp = body.is_object() || status < 400;
    if !from_agentidp {
        return Err(format!(
            "{label} answered {status} from something else than AgentIdP"
        ));
    }
    if matches!(code, "route_not_found" | "method_not_allowed") {
        return Err(format!(
            "{label} reached a function that does not serve it ({code})"
        ));
    }
    if route.access == Access::Client && !oauth_error {
        return Err(format!("{label}: not an RFC 6749 answer ({status})"));
    }
    if code == "configuration_error" {
        return Err(format!("{label}: {}", describe(status, &body)));
    }
    Ok(())
}
