//! A local stand-in for the edge's routing: forwards each request, by path prefix, to the function
//! that serves it (as the Workers zone routes and Spin's trigger routes do in production).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;

/// `PREFIX=URL`, e.g. `/oauth2/=http://127.0.0.1:9101`.
#[derive(Clone, Debug)]
pub struct Route {
    prefix: String,
    upstream: String,
}

impl std::str::FromStr for Route {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (prefix, upstream) = text
            .split_once('=')
            .filter(|(p, u)| p.starts_with('/') && u.starts_with("http"))
            .ok_or_else(|| {
                format!("`{text}` is not PREFIX=URL, e.g. /oauth2/=http://127.0.0.1:9101")
            })?;
        Ok(Route {
            prefix: prefix.to_owned(),
            upstream: upstream.trim_end_matches('/').to_owned(),
        })
    }
}

struct Routes {
    routes: Vec<Route>,
    client: reqwest::Client,
}

pub async fn serve(listen: SocketAddr, mut routes: Vec<Route>) -> Result<(), String> {
    // Longest prefix first, so `/health/detailed` can go elsewhere than `/health`.
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
    let state = Arc::new(Routes {
        routes,
        client: reqwest::Client::new(),
    });
    let app = Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, "dev router serving");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn forward(State(routes): State<Arc<Routes>>, request: Request) -> Response {
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let Some(route) = routes
        .routes
        .iter()
        .find(|r| path_and_query.starts_with(&r.prefix))
    else {
        return (StatusCode::BAD_GATEWAY, "no function routed for this path").into_response();
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large for the dev router",
        )
            .into_response();
    };
    let mut outgoing = routes
        .client
        .request(
            parts.method,
            format!("{}{}", route.upstream, path_and_query),
        )
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.send().await {
        Ok(upstream) => {
            let status = upstream.status();
            let headers = upstream.headers().clone();
            let body: Bytes = upstream.bytes().await.unwrap_or_default();
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name != "transfer-encoding" && name != "content-length" {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            format!("upstream {}: {e}", route.upstream),
        )
            .into_response(),
    }
}
