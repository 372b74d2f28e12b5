//! Step 6½ of the send hook: the vendor's rate budget ([`crate::policy::rate_budget`]), kept in the
//! store so that every call of every process on it takes from the same count. A request to the
//! connection's endpoint origin takes one request from each of the connection's scopes before it goes
//! out; when none is left it waits for the window's reset if that is near, and otherwise is answered
//! at once by the host with an HTTP 429 of its own (`Retry-After`, `RateLimit`, and
//! `claribi-rate-budget: spent`), which the connector reads as the vendor's and reports as
//! `rate-limited` with the retry time. Every answer from that origin teaches the budget.
//!
//! The budget is not a security boundary: if the store cannot be read, the request goes out (and
//! the vendor's own 429, if any, is what the connector sees).

use super::OutboundContext;
use crate::policy::rate_budget::{Observed, Take};
use crate::policy::Target;
use crate::vault::store::Store;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime_wasi_http::WasiBody;

/// The longest a request waits for a window's reset (less when the call's time limit is short).
pub const MAX_WAIT: Duration = Duration::from_secs(5);
/// How often a request waiting for another one's first answer looks again.
const POLL: Duration = Duration::from_millis(20);

/// The rate-budget scopes a call's endpoint requests take from.
pub struct RateScopes {
    pub store: Arc<Store>,
    /// Each scope with how many times the key's limit it holds (`key:<connection>` 1, `org:…` the
    /// vendor's organization factor).
    pub scopes: Vec<(String, i64)>,
}

impl OutboundContext {
    fn metered(&self, target: &Target) -> Option<&RateScopes> {
        let rate = self.rate.as_ref()?;
        (self.endpoint.as_ref().map(|e| &e.origin) == Some(&target.origin)).then_some(rate)
    }

    /// Take a request from the budget, waiting for a near reset: `None` to send, or the host's own
    /// 429 to answer with.
    pub(super) async fn take_rate_budget(&self, target: &Target) -> Option<http::Response<WasiBody>> {
        let rate = self.metered(target)?;
        let max_wait = MAX_WAIT.min(self.limits.call_timeout / 2);
        let started = Instant::now();
        loop {
            let now = Store::now_ms();
            match rate.store.take_rate_budget(&rate.scopes, now) {
                Ok(Take::Go(_)) => return None,
                Ok(Take::Wait { until_ms, learning }) => {
                    let left = Duration::from_millis((until_ms - now).max(0) as u64);
                    if started.elapsed() + left > max_wait {
                        return Some(self.spent(until_ms - now));
                    }
                    // A learning request's answer may come any moment; a spent window refills at its
                    // reset (a little later for each waiter, so they do not all ask at once).
                    let nap = if learning { left.min(POLL) } else { left + Duration::from_millis(rand::random::<u64>() % 20) };
                    tokio::time::sleep(nap.max(Duration::from_millis(1))).await;
                }
                Err(e) => {
                    tracing::warn!(connection = %self.connection, "the rate budget could not be read ({e}); the request goes out unmetered");
                    return None;
                }
            }
        }
    }

    /// Learn from an answer of the endpoint origin.
    pub(super) fn learn_rate_budget(&self, target: &Target, status: u16, headers: &http::HeaderMap) {
        let Some(rate) = self.metered(target) else { return };
        let now = Store::now_ms();
        let learned = match Observed::from_answer(status, headers) {
            Some(seen) => rate.store.learn_rate_budget(&rate.scopes, seen, now),
            None => rate.store.unmetered_rate_budget(&rate.scopes, now),
        };
        if let Err(e) = learned {
            tracing::warn!(connection = %self.connection, "the rate budget could not be updated: {e}");
        }
    }

    /// The host's own 429: the budget is spent for `left_ms` more.
    fn spent(&self, left_ms: i64) -> http::Response<WasiBody> {
        let secs = (left_ms.max(0) + 999) / 1000;
        let body = serde_json::json!({
            "error": "rate_limited",
            "error_description": format!("the rate budget this host shares for `{}` is spent; retry in {secs} s", self.connection),
        })
        .to_string();
        let mut response = http::Response::new(http_body_util::Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync());
        *response.status_mut() = http::StatusCode::TOO_MANY_REQUESTS;
        let headers = response.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        if let Ok(v) = http::HeaderValue::from_str(&format!("remaining=0, reset={secs}")) {
            headers.insert("ratelimit", v);
        }
        headers.insert("claribi-rate-budget", http::HeaderValue::from_static("spent"));
        response
    }
}
