//! The console's side of tool-definition reviews ([`crate::service::reviews`]): what waits for a
//! review on a data source (with the diff), and the Approve button. The same service calls as
//! `claribi-host tools NAME --review` / `--approve`.

use super::{fail, host_fail, named, ok, parse_body, AppState};
use crate::service::reviews::{operator, Approve};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use std::sync::Arc;

/// `GET /api/connections/{name}/reviews`: the tools waiting for a review, and past approvals.
pub(super) async fn list(State(st): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    if let Err(r) = named(&st, &name) {
        return r;
    }
    // List first, so the reviews are those of what the server offers now.
    if let Err(e) = st.host.list_tools(&name).await {
        return host_fail(&e);
    }
    let reviews = match st.host.pending_reviews(&name) {
        Ok(r) => r,
        Err(e) => return host_fail(&e),
    };
    let approvals = match st.host.approvals(&name) {
        Ok(a) => a,
        Err(e) => return host_fail(&e),
    };
    ok(json!({
        "reviews": reviews.iter().map(|r| json!({
            "tool": r.tool, "kind": r.kind, "detail": r.detail, "definition": r.definition, "seen_at": r.seen_at,
        })).collect::<Vec<_>>(),
        "approvals": approvals.iter().rev().take(50).map(|a| json!({
            "tool": a.tool, "approved_at": a.approved_at, "approved_by": a.approved_by, "how": a.how,
        })).collect::<Vec<_>>(),
    }))
}

/// `POST /api/connections/{name}/reviews/approve` with `{"tools": [...]}` or `{"all": true}`.
pub(super) async fn approve(State(st): State<Arc<AppState>>, Path(name): Path<String>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = named(&st, &name) {
        return r;
    }
    let which = if body.get("all").and_then(Value::as_bool) == Some(true) {
        Approve::All
    } else {
        let tools: Vec<String> =
            body.get("tools").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default();
        if tools.is_empty() {
            return fail(StatusCode::BAD_REQUEST, "name the tools to approve");
        }
        Approve::Tools(tools)
    };
    match st.host.approve_tools(&name, &which, &format!("console ({})", operator())) {
        Ok(approved) => ok(json!({ "approved": approved })),
        Err(e) => host_fail(&e),
    }
}
