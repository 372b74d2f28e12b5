//! Which scopes an authorization request asks for. A connector supplies a [`ScopePolicy`];
//! [`SpecScopePolicy`] is the MCP spec's strategy for a client that knows nothing of the server.

/// What a policy chooses from.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScopeInputs<'a> {
    /// The scopes the connection is configured with (the operator's, or the host's on a step-up).
    pub configured: &'a [String],
    /// The `scope` of the server's latest 401 or 403 challenge.
    pub challenged: &'a [String],
    /// Whether that challenge was a 403 `insufficient_scope` (a step-up).
    pub step_up: bool,
    /// The scopes requested by the authorization in force, if any (a re-authorization).
    pub previous: &'a [String],
    /// The protected resource's `scopes_supported`.
    pub resource_scopes: &'a [String],
    /// The authorization server's `scopes_supported`.
    pub server_scopes: &'a [String],
}

/// Chooses the `scope` of an authorization request (and of a dynamic registration). An empty list
/// means the parameter is omitted.
pub trait ScopePolicy {
    fn select(&self, inputs: &ScopeInputs<'_>) -> Vec<String>;
}

/// The MCP 2025-11-25 strategy: the configured scopes if any, else the challenge's `scope`, else the
/// protected resource's `scopes_supported`, else nothing. A re-authorization asks for the union of
/// what was requested before and what is asked now (so a step-up never loses a scope). `offline_access`
/// is added when the authorization server lists it and something else is requested.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpecScopePolicy;

/// The scope that asks for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

impl ScopePolicy for SpecScopePolicy {
    fn select(&self, inputs: &ScopeInputs<'_>) -> Vec<String> {
        let base: &[String] = if !inputs.configured.is_empty() {
            inputs.configured
        } else if !inputs.challenged.is_empty() {
            inputs.challenged
        } else {
            inputs.resource_scopes
        };
        let mut scopes = Vec::new();
        if !inputs.previous.is_empty() || inputs.step_up {
            union_into(&mut scopes, inputs.previous);
            union_into(&mut scopes, inputs.configured);
            union_into(&mut scopes, inputs.challenged);
            union_into(&mut scopes, base);
        } else {
            union_into(&mut scopes, base);
        }
        with_offline_access(scopes, inputs.server_scopes)
    }
}

/// `scopes` with `offline_access` added when the authorization server lists it and `scopes` is not
/// empty (asking for `offline_access` alone would replace the server's default scope); removed when
/// the server does not list it.
pub fn with_offline_access(mut scopes: Vec<String>, server_scopes: &[String]) -> Vec<String> {
    let offered = server_scopes.iter().any(|s| s == OFFLINE_ACCESS);
    if !offered {
        scopes.retain(|s| s != OFFLINE_ACCESS);
        return scopes;
    }
    if !scopes.is_empty() && !scopes.iter().any(|s| s == OFFLINE_ACCESS) {
        scopes.push(OFFLINE_ACCESS.to_owned());
    }
    scopes
}

/// Appends the scopes of `more` not yet in `scopes`, in order.
pub fn union_into(scopes: &mut Vec<String>, more: &[String]) {
    for s in more {
        let s = s.trim();
        if !s.is_empty() && !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_spec_policy_prefers_configured_then_challenged_then_supported_then_nothing() {
        let (configured, challenged, supported) =
            (v(&["c"]), v(&["mcp:basic"]), v(&["a", "b", "c"]));
        let cases: Vec<(ScopeInputs, Vec<String>)> = vec![
            (
                ScopeInputs {
                    configured: &configured,
                    challenged: &challenged,
                    resource_scopes: &supported,
                    ..Default::default()
                },
                v(&["c"]),
            ),
            (
                ScopeInputs {
                    challenged: &challenged,
                    resource_scopes: &supported,
                    ..Default::default()
                },
                v(&["mcp:basic"]),
            ),
            (
                ScopeInputs {
                    resource_scopes: &supported,
                    ..Default::default()
                },
                v(&["a", "b", "c"]),
            ),
            (ScopeInputs::default(), v(&[])),
        ];
        for (i, (inputs, expected)) in cases.into_iter().enumerate() {
            assert_eq!(SpecScopePolicy.select(&inputs), expected, "case {i}");
        }
    }

    #[test]
    fn a_step_up_asks_for_the_union_of_the_previous_and_the_challenged_scopes() {
        let (previous, challenged) = (v(&["mcp:basic"]), v(&["mcp:write"]));
        let inputs = ScopeInputs {
            previous: &previous,
            challenged: &challenged,
            step_up: true,
            ..Default::default()
        };
        assert_eq!(
            SpecScopePolicy.select(&inputs),
            v(&["mcp:basic", "mcp:write"])
        );
    }

    #[test]
    fn offline_access_is_added_only_when_the_server_lists_it_and_something_else_is_asked() {
        let (supported, with, without) = (
            v(&["mcp:basic"]),
            v(&["mcp:basic", "offline_access"]),
            v(&["mcp:basic"]),
        );
        let select = |server: &[String], resource: &[String]| {
            SpecScopePolicy.select(&ScopeInputs {
                resource_scopes: resource,
                server_scopes: server,
                ..Default::default()
            })
        };
        assert_eq!(
            select(&with, &supported),
            v(&["mcp:basic", "offline_access"])
        );
        assert_eq!(select(&without, &supported), v(&["mcp:basic"]));
        assert_eq!(select(&with, &[]), v(&[]));
        // A previous request's offline_access is dropped when the server no longer offers it.
        let previous = v(&["mcp:basic", "offline_access"]);
        let inputs = ScopeInputs {
            previous: &previous,
            server_scopes: &without,
            ..Default::default()
        };
        assert_eq!(SpecScopePolicy.select(&inputs), v(&["mcp:basic"]));
    }
}
