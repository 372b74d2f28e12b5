//! A rate budget of the kind Close's API keeps for an organization: at most `limit` POSTs to `/mcp`
//! per window of `window_secs` seconds, a window starting at the first POST after the last one ended.
//! Every answer to a POST carries `RateLimit: limit=L, remaining=R, reset=S` (`R` as counted when the
//! request was admitted, `S` the seconds left in the window, rounded up); a POST past the limit is
//! answered HTTP 429 with the same header (`remaining=0`), `Retry-After: S` and
//! `{"error": "rate_limited", …}`. Off by default; [`StandIn::set_rate_budget`](crate::StandIn::set_rate_budget)
//! turns it on, and [`StandIn::rate_budget_counts`](crate::StandIn::rate_budget_counts) says how many
//! POSTs were admitted and refused, and the most admitted in one window.
//!
//! It is checked after authentication (a request without credentials still gets Close's 401) and
//! before the fault switches.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most `limit` POSTs per `window_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateBudget {
    pub limit: u32,
    pub window_secs: u32,
}

/// What the budget admitted and refused since it was set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BudgetCounts {
    pub admitted: u64,
    /// POSTs answered 429 because the window's budget was spent.
    pub refused: u64,
    /// The most POSTs admitted within one window.
    pub most_in_one_window: u32,
}

#[derive(Default)]
struct Window {
    budget: Option<RateBudget>,
    /// When the current window ends (`None`: no window open).
    ends: Option<Instant>,
    used: u32,
    counts: BudgetCounts,
}

/// The budget, shared by the middleware and the handle.
#[derive(Default)]
pub(crate) struct BudgetState {
    window: Mutex<Window>,
}

impl BudgetState {
    pub(crate) fn set(&self, budget: Option<RateBudget>) {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        *w = Window { budget: budget.filter(|b| b.limit > 0 && b.window_secs > 0), ..Window::default() };
    }

    pub(crate) fn counts(&self) -> BudgetCounts {
        self.window.lock().unwrap_or_else(|e| e.into_inner()).counts
    }

    /// Admit one POST now: `Ok((limit, remaining, window end))` or `Err((limit, window end))`.
    fn admit(&self, now: Instant) -> Option<Result<(u32, u32, Instant), (u32, Instant)>> {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let budget = w.budget?;
        let ends = match w.ends {
            Some(ends) if now < ends => ends,
            _ => {
                w.used = 0;
                let ends = now + Duration::from_secs(u64::from(budget.window_secs));
                w.ends = Some(ends);
                ends
            }
        };
        if w.used >= budget.limit {
            w.counts.refused += 1;
            return Some(Err((budget.limit, ends)));
        }
        w.used += 1;
        w.counts.admitted += 1;
        w.counts.most_in_one_window = w.counts.most_in_one_window.max(w.used);
        Some(Ok((budget.limit, budget.limit - w.used, ends)))
    }
}

fn seconds_left(ends: Instant) -> u64 {
    let left = ends.saturating_duration_since(Instant::now());
    left.as_millis().div_ceil(1000) as u64
}

fn header_value(limit: u32, remaining: u32, ends: Instant) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("limit={limit}, remaining={remaining}, reset={}", seconds_left(ends))).ok()
}

/// The middleware on `POST /mcp`.
pub(crate) async fn enforce(State(state): State<Arc<BudgetState>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    match state.admit(Instant::now()) {
        None => next.run(req).await,
        Some(Ok((limit, remaining, ends))) => {
            let mut response = next.run(req).await;
            if let Some(v) = header_value(limit, remaining, ends) {
                response.headers_mut().insert("ratelimit", v);
            }
            response
        }
        Some(Err((limit, ends))) => {
            let secs = seconds_left(ends);
            let body = format!(
                "{{\"error\": \"rate_limited\", \"error_description\": \"API call count exceeded for this period; retry in {secs} seconds\"}}"
            );
            let mut response = (StatusCode::TOO_MANY_REQUESTS, [(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(v) = header_value(limit, 0, ends) {
                response.headers_mut().insert("ratelimit", v);
            }
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_limit_then_refuses_until_it_ends() {
        let state = BudgetState::default();
        let t0 = Instant::now();
        assert!(state.admit(t0).is_none(), "off by default");
        state.set(Some(RateBudget { limit: 2, window_secs: 1 }));
        assert_eq!(state.admit(t0).unwrap().map(|(l, r, _)| (l, r)), Ok((2, 1)));
        assert_eq!(state.admit(t0).unwrap().map(|(l, r, _)| (l, r)), Ok((2, 0)));
        assert!(state.admit(t0 + Duration::from_millis(500)).unwrap().is_err());
        assert_eq!(state.admit(t0 + Duration::from_secs(1)).unwrap().map(|(_, r, _)| r), Ok(1), "a new window");
        assert_eq!(state.counts(), BudgetCounts { admitted: 3, refused: 1, most_in_one_window: 2 });
    }
}
