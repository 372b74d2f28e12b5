//! The vendor's rate budget, shared by every call of every process on one store: learned from the
//! `RateLimit` headers and 429s the vendor sends, and taken from *before* a request goes out, so that an
//! engine's fan-out of parallel calls waits (or fails fast with `rate-limited` and a retry time) instead
//! of tripping the vendor's 429s.
//!
//! A worked example — Close answers every call with `RateLimit: limit=20, remaining=19, reset=3`:
//!
//! ```text
//! nothing known      take → Go, learning: one request in flight until an answer teaches the budget
//! answer arrives     learn(limit 20, remaining 19, reset 3 s) → 19 left until now + 3 s
//! 19 calls at once   take → Go ×19 (remaining 19 → 0)
//! the 20th           take → Wait(until the reset): waited out when it is near (≤ max_wait),
//!                    else answered at once as a 429 of the host's own with Retry-After
//! the reset passes   take → Go: the window refills to its limit (20) for another 3 s
//! ```
//!
//! Budgets are kept per *scope*: the connection's key (`key:<connection id>`) with the limit the
//! vendor reports, and the organization the connection reaches (`org:<connector>:<endpoint
//! origin>:<account>`) with that limit times the vendor's organization factor ([`org_factor`]:
//! Close's organization limit is three times its per-key limit), so several keys of one organization
//! share the organization's budget. The organization scope names the endpoint's origin, which the
//! operator chose: a server elsewhere describing the same account cannot touch this budget. A call
//! takes from every scope it has, or from none. One answer holds a scope shut for
//! [`MAX_RESET_MS`] at most.

/// One scope's budget, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Requests per window.
    pub limit: i64,
    /// Requests left in this window.
    pub remaining: i64,
    /// When this window ends (Unix ms).
    pub reset_at_ms: i64,
    /// How long a window lasts (the longest reset seen), for refills.
    pub window_ms: i64,
    /// Whether an answer has taught it (else: one request in flight while the first answer is awaited).
    pub learned: bool,
}

/// How long the learning request holds the scope before others may try again without an answer.
pub const LEARNING_MS: i64 = 2_000;

/// How long an answer that says nothing of a budget lets requests go unmetered before the next one
/// learns again (any answer that does say something teaches the budget at once).
pub const UNMETERED_MS: i64 = 3_600_000;
/// The longest reset or `Retry-After` believed: a vendor (or a server pretending to be one) cannot
/// hold a scope shut for longer than this with one answer.
pub const MAX_RESET_MS: i64 = 3_600_000;
const UNMETERED: i64 = i64::MAX / 4;

/// The budget after an answer that says nothing of one: a scope still learning goes unmetered for
/// [`UNMETERED_MS`] (a vendor that sends no `RateLimit` headers is not held to one request at a
/// time); a learned one stays as it is (`None`).
pub fn unmetered(state: Option<Budget>, now_ms: i64) -> Option<Budget> {
    match state {
        Some(b) if b.learned => None,
        Some(b) if b.limit == UNMETERED && now_ms < b.reset_at_ms => None,
        _ => Some(Budget { limit: UNMETERED, remaining: UNMETERED, reset_at_ms: now_ms + UNMETERED_MS, window_ms: UNMETERED_MS, learned: false }),
    }
}

/// What taking from a budget decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Send; the budget after this request.
    Go(Budget),
    /// Not before this time (Unix ms). `learning`: another request is learning the budget, and its
    /// answer may come any moment (look again soon); otherwise nothing changes before `until_ms`.
    Wait { until_ms: i64, learning: bool },
}

/// Whether `b` is the hold [`take`] puts on a scope while its first answer is awaited.
fn is_learning_hold(b: &Budget) -> bool {
    !b.learned && b.limit == 1 && b.window_ms == LEARNING_MS
}

/// Take one request from `state` at `now_ms`.
pub fn take(state: Option<Budget>, now_ms: i64) -> Take {
    match state {
        None => Take::Go(Budget { limit: 1, remaining: 0, reset_at_ms: now_ms + LEARNING_MS, window_ms: LEARNING_MS, learned: false }),
        Some(b) if now_ms >= b.reset_at_ms => {
            if !b.learned {
                // The learning request's answer never came (or taught nothing): learn again.
                return take(None, now_ms);
            }
            Take::Go(Budget { remaining: b.limit - 1, reset_at_ms: now_ms + b.window_ms, ..b })
        }
        Some(b) if b.remaining > 0 => Take::Go(Budget { remaining: b.remaining - 1, ..b }),
        Some(b) => Take::Wait { until_ms: b.reset_at_ms, learning: is_learning_hold(&b) },
    }
}

/// What one answer said about the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    pub limit: Option<i64>,
    pub remaining: i64,
    /// Until the window resets.
    pub reset_ms: i64,
}

impl Observed {
    /// Read an answer's headers: `RateLimit: limit=…, remaining=…, reset=…` (the IETF draft form
    /// Close sends), or the `RateLimit-Limit`/`-Remaining`/`-Reset` triple; a 429 means nothing is
    /// left, until `Retry-After` (seconds) or the reset. `None`: the answer says nothing of a budget.
    pub fn from_answer(status: u16, headers: &http::HeaderMap) -> Option<Observed> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let mut limit = None;
        let mut remaining = None;
        let mut reset = None;
        if let Some(v) = get("ratelimit") {
            for part in v.split([',', ';']) {
                let Some((k, val)) = part.split_once('=') else { continue };
                let n = val.trim().trim_matches('"').parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e9);
                match k.trim().to_ascii_lowercase().as_str() {
                    "limit" | "l" => limit = n.map(|n| n as i64),
                    "remaining" | "r" => remaining = n.map(|n| n as i64),
                    "reset" | "t" => reset = n.map(|n| (n * 1000.0) as i64),
                    _ => {}
                }
            }
        }
        let number = |name: &str| get(name).and_then(|v| v.trim().parse::<f64>().ok()).filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e9);
        limit = limit.or_else(|| number("ratelimit-limit").map(|n| n as i64));
        remaining = remaining.or_else(|| number("ratelimit-remaining").map(|n| n as i64));
        reset = reset.or_else(|| number("ratelimit-reset").map(|n| (n * 1000.0) as i64));
        if status == 429 {
            let retry = number("retry-after").map(|n| (n * 1000.0) as i64);
            return Some(Observed { limit, remaining: 0, reset_ms: retry.or(reset).unwrap_or(1_000).clamp(1, MAX_RESET_MS) });
        }
        Some(Observed { limit, remaining: remaining?, reset_ms: reset?.clamp(1, MAX_RESET_MS) })
    }

    /// The same answer seen from a scope whose limit is `factor` times the key's.
    pub fn scaled(self, factor: i64, current: Option<Budget>) -> Observed {
        if factor == 1 {
            return self;
        }
        let limit = self.limit.map(|l| l * factor);
        // What the other keys of the organization used is not in this answer: keep what the shared
        // count says, bounded by the scaled limit.
        let remaining = match (current, limit) {
            (Some(b), Some(l)) if b.learned => b.remaining.min(l),
            (_, Some(l)) => l - (self.limit.unwrap_or(0) - self.remaining).max(0),
            _ => self.remaining,
        };
        Observed { limit, remaining, reset_ms: self.reset_ms }
    }
}

/// The budget after an answer observed at `now_ms`: a new window takes the answer's figures; within
/// the same window the lower count wins (requests other processes sent may not be in this answer).
///
/// An answer that gives no limit (a bare 429, say), to a scope that knows none, holds the scope to
/// what it says until its reset and then lets it learn again: it is not taken for the vendor's limit.
pub fn learn(state: Option<Budget>, seen: Observed, now_ms: i64) -> Budget {
    let reset_at_ms = now_ms + seen.reset_ms;
    let Some(limit) = seen.limit.or(state.filter(|b| b.learned).map(|b| b.limit)).map(|l| l.max(1)) else {
        return Budget { limit: seen.remaining.max(1), remaining: seen.remaining, reset_at_ms, window_ms: seen.reset_ms.max(1), learned: false };
    };
    match state {
        // An answer from an earlier window, arriving late, says nothing of the current one.
        Some(b) if b.learned && now_ms < b.reset_at_ms && reset_at_ms + 1_000 <= b.reset_at_ms => b,
        Some(b) if b.learned && now_ms < b.reset_at_ms && (reset_at_ms - b.reset_at_ms).abs() < 1_000 => Budget {
            limit,
            remaining: b.remaining.min(seen.remaining),
            reset_at_ms: b.reset_at_ms.max(reset_at_ms),
            window_ms: b.window_ms.max(seen.reset_ms),
            learned: true,
        },
        _ => Budget {
            limit,
            remaining: seen.remaining.min(limit),
            reset_at_ms,
            window_ms: state.filter(|b| b.learned).map(|b| b.window_ms).unwrap_or(0).max(seen.reset_ms).max(1_000),
            learned: true,
        },
    }
}

/// How many times a key's limit an organization's budget is, per connector: Close's organization
/// limit is three times its per-key limit; for others nothing is known, and the organization shares
/// one key's budget.
pub fn org_factor(connector_id: &str) -> i64 {
    match connector_id {
        "close" => 3,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn nothing_known_lets_one_request_learn_while_others_wait() {
        let Take::Go(b) = take(None, 1_000) else { panic!() };
        assert!(!b.learned);
        assert_eq!(take(Some(b), 1_100), Take::Wait { until_ms: 1_000 + LEARNING_MS, learning: true });
        // The answer never came: after the learning hold, another request learns.
        assert!(matches!(take(Some(b), 1_000 + LEARNING_MS), Take::Go(Budget { learned: false, .. })));
    }

    #[test]
    fn an_answer_without_a_budget_lets_requests_go_for_a_while_then_learns_again() {
        let Take::Go(learning) = take(None, 0) else { panic!() };
        let open = unmetered(Some(learning), 100).expect("a learning scope opens");
        assert!(matches!(take(Some(open), 200), Take::Go(_)));
        assert!(matches!(take(Some(open), 300), Take::Go(_)), "many at once");
        assert_eq!(unmetered(Some(open), 400), None, "already open");
        assert!(matches!(take(Some(open), 100 + UNMETERED_MS), Take::Go(Budget { limit: 1, learned: false, .. })), "learns again");
        let learned = learn(None, Observed { limit: Some(5), remaining: 4, reset_ms: 1_000 }, 0);
        assert_eq!(unmetered(Some(learned), 10), None, "a learned budget is not forgotten by a silent answer");
    }

    #[test]
    fn a_learned_budget_is_spent_then_waited_for_then_refilled() {
        let seen = Observed { limit: Some(3), remaining: 2, reset_ms: 3_000 };
        let b = learn(None, seen, 10_000);
        assert_eq!(b, Budget { limit: 3, remaining: 2, reset_at_ms: 13_000, window_ms: 3_000, learned: true });
        let Take::Go(b) = take(Some(b), 10_100) else { panic!() };
        let Take::Go(b) = take(Some(b), 10_200) else { panic!() };
        assert_eq!(b.remaining, 0);
        assert_eq!(take(Some(b), 10_300), Take::Wait { until_ms: 13_000, learning: false });
        let Take::Go(b) = take(Some(b), 13_000) else { panic!("the window refills") };
        assert_eq!((b.remaining, b.reset_at_ms), (2, 16_000));
    }

    #[test]
    fn a_bare_429_holds_the_scope_until_its_reset_and_is_not_taken_for_the_limit() {
        let b = learn(None, Observed { limit: None, remaining: 0, reset_ms: 3_000 }, 0);
        assert_eq!(take(Some(b), 100), Take::Wait { until_ms: 3_000, learning: false });
        assert!(matches!(take(Some(b), 3_000), Take::Go(Budget { limit: 1, learned: false, .. })), "learns again after the reset");
        // A scope that knew its limit keeps it.
        let known = learn(None, Observed { limit: Some(50), remaining: 10, reset_ms: 1_000 }, 0);
        assert_eq!(learn(Some(known), Observed { limit: None, remaining: 0, reset_ms: 30_000 }, 2_000).limit, 50);
    }

    #[test]
    fn a_late_answer_from_an_earlier_window_is_ignored_and_resets_are_capped() {
        let current = Budget { limit: 10, remaining: 4, reset_at_ms: 20_000, window_ms: 10_000, learned: true };
        assert_eq!(learn(Some(current), Observed { limit: Some(10), remaining: 9, reset_ms: 1 }, 12_000), current);
        let h = headers(&[("Retry-After", "999999999")]);
        assert_eq!(Observed::from_answer(429, &h).map(|o| o.reset_ms), Some(MAX_RESET_MS));
    }

    #[test]
    fn within_a_window_the_lower_count_wins_and_a_new_window_takes_the_answer() {
        let b = learn(None, Observed { limit: Some(10), remaining: 9, reset_ms: 5_000 }, 0);
        // Another process spent more than this answer knows of.
        let spent = Budget { remaining: 3, ..b };
        assert_eq!(learn(Some(spent), Observed { limit: Some(10), remaining: 6, reset_ms: 4_800 }, 200).remaining, 3);
        assert_eq!(learn(Some(b), Observed { limit: Some(10), remaining: 2, reset_ms: 4_800 }, 200).remaining, 2);
        // A later window: the answer's figures.
        let next = learn(Some(spent), Observed { limit: Some(10), remaining: 9, reset_ms: 5_000 }, 6_000);
        assert_eq!((next.remaining, next.reset_at_ms), (9, 11_000));
    }

    #[test]
    fn answers_are_read_in_each_header_form() {
        let table: &[(u16, &[(&str, &str)], Option<Observed>)] = &[
            (200, &[("ratelimit", "limit=100, remaining=42, reset=7")], Some(Observed { limit: Some(100), remaining: 42, reset_ms: 7_000 })),
            (200, &[("RateLimit-Limit", "50"), ("RateLimit-Remaining", "0"), ("RateLimit-Reset", "1.5")], Some(Observed { limit: Some(50), remaining: 0, reset_ms: 1_500 })),
            (429, &[("Retry-After", "30"), ("RateLimit", "limit=100, remaining=0, reset=20")], Some(Observed { limit: Some(100), remaining: 0, reset_ms: 30_000 })),
            (429, &[], Some(Observed { limit: None, remaining: 0, reset_ms: 1_000 })),
            (200, &[], None),
            (200, &[("ratelimit", "limit=100")], None),
            (200, &[("ratelimit", "limit=-1, remaining=x, reset=NaN")], None),
        ];
        for (status, h, want) in table {
            assert_eq!(Observed::from_answer(*status, &headers(h)), *want, "{status} {h:?}");
        }
    }

    #[test]
    fn an_organization_scope_is_the_key_limit_times_the_vendors_factor() {
        let seen = Observed { limit: Some(20), remaining: 15, reset_ms: 3_000 };
        assert_eq!(seen.scaled(1, None), seen);
        let org = seen.scaled(org_factor("close"), None);
        assert_eq!((org.limit, org.remaining), (Some(60), 55), "five used of sixty");
        let shared = Budget { limit: 60, remaining: 12, reset_at_ms: 3_000, window_ms: 3_000, learned: true };
        assert_eq!(seen.scaled(3, Some(shared)).remaining, 12, "the shared count, not this key's");
        assert_eq!(org_factor("github"), 1);
    }
}
