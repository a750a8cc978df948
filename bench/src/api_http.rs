//! The benchmark's API server (`api_server`) over HTTP, in a process of its own: a list or a watch of
//! a namespace's CohortRollouts or WasmPlugins, every other request answered by the in-memory
//! state. A watch is a never-ending stream of the writes made after it opened. `GET /bench/stats`
//! tells the benchmark the applies of each WasmPlugin and this process's CPU time; `POST
//! /bench/history` fills every status's history (`State::fill_history`).

use crate::api_server::ApiServer;
use crate::cpu::process_cpu_ns;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use rollout::api::HISTORY_LIMIT;
use std::convert::Infallible;

const ROLLOUT_LIST: &str = "/apis/sluice.dev/v1alpha1/namespaces/";
const PLUGIN_LIST: &str = "/apis/extensions.istio.io/v1alpha1/namespaces/";

/// Serves `server` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, server: ApiServer) -> std::io::Result<()> {
    let app = Router::new().fallback(answer).with_state(server);
    axum::serve(listener, app).await
}

/// The namespace and kind (`true`: CohortRollouts) of a list or watch path.
fn listed(path: &str) -> Option<(&str, bool)> {
    if let Some(rest) = path.strip_prefix(ROLLOUT_LIST) {
        return Some((rest.strip_suffix("/cohortrollouts")?, true));
    }
    let rest = path.strip_prefix(PLUGIN_LIST)?;
    Some((rest.strip_suffix("/wasmplugins")?, false))
}

async fn answer(
    State(server): State<ApiServer>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let json = |status: StatusCode, body: Body| {
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let value = header::HeaderValue::from_static("application/json");
        response.headers_mut().insert(header::CONTENT_TYPE, value);
        response
    };
    match (&method, path, listed(path)) {
        (&Method::GET, "/bench/stats", _) => {
            let state = server.state();
            let stats = serde_json::json!({
                "applies": state.applies, "requests": state.requests,
                "conflicts": state.conflicts, "cpu_ns": process_cpu_ns(),
            });
            json(StatusCode::OK, Body::from(stats.to_string()))
        }
        (&Method::POST, "/bench/history", _) => {
            server.state().fill_history(HISTORY_LIMIT);
            json(StatusCode::OK, Body::from("{}"))
        }
        (&Method::GET, _, Some((namespace, rollouts))) => {
            if uri.query().is_some_and(|q| q.contains("watch=true")) {
                let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel();
                server.state().watch(rollouts, events);
                let stream = futures::stream::poll_fn(move |cx| {
                    receiver.poll_recv(cx).map(|e| e.map(Ok::<_, Infallible>))
                });
                return json(StatusCode::OK, Body::from_stream(stream));
            }
            let param = |name: &str| {
                let query = uri.query().unwrap_or_default();
                let value = query.split('&').find_map(|p| p.strip_prefix(name));
                value.and_then(|v| v.parse().ok()).unwrap_or(0)
            };
            let page = (param("limit="), param("continue="));
            let list = server.state().list(rollouts, namespace, page.0, page.1);
            json(StatusCode::OK, Body::from(list))
        }
        _ => {
            let (status, answer) = server.state().answer(&method, path, &body);
            json(status, Body::from(answer))
        }
    }
}
