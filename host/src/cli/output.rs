//! Human tables and `--json` output for the CLI.

use claribi_host::service::{ConnectOutcome, Content, SecretBinding, ToolListing, ToolOutput};
use claribi_host::vault::store::{AuditEntry, ConnectionRecord, EngineTokenRecord, PendingReview};
use serde::Serialize;
use serde_json::{json, Value};

/// Print a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
}

fn clip(s: &str, n: usize) -> String {
    let s = s.replace(['\n', '\r', '\t'], " ");
    if s.chars().count() <= n {
        s
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// Render rows as an aligned table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| if i + 1 == cells.len() { c.clone() } else { format!("{c:<w$}", w = widths[i]) })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
    out
}

/// `claribi-host connections`.
pub fn connections(list: &[ConnectionRecord], pending: &[usize], json: bool) {
    if json {
        let v: Vec<Value> = list
            .iter()
            .zip(pending)
            .map(|(c, pending)| {
                json!({
                    "name": c.name, "connector": c.connector_id, "endpoint": c.endpoint,
                    "auth": c.auth_method.as_str(), "status": c.status.as_str(), "account": c.account,
                    "granted_scopes": c.granted_scopes, "operator_origins": c.policy.grant.to_strings(),
                    "last_error": c.last_error, "tools_awaiting_review": pending,
                })
            })
            .collect();
        print_json(&v);
        return;
    }
    if list.is_empty() {
        println!("no connections; create one with `claribi-host connect NAME --plugin builtin:close --api-key-env VAR`");
        return;
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .zip(pending)
        .map(|(c, pending)| {
            vec![
                c.name.clone(),
                c.connector_id.clone(),
                c.auth_method.as_str().to_string(),
                c.status.as_str().to_string(),
                pending.to_string(),
                c.account.clone().unwrap_or_else(|| "-".into()),
                c.endpoint.clone(),
            ]
        })
        .collect();
    print!("{}", table(&["NAME", "CONNECTOR", "AUTH", "STATUS", "REVIEWS", "ACCOUNT", "ENDPOINT"], &rows));
}

/// `claribi-host status`: each connection's state, and what each of its secrets is bound to.
pub fn status(list: &[(ConnectionRecord, Vec<SecretBinding>, usize)], json: bool) {
    if json {
        let v: Vec<Value> = list
            .iter()
            .map(|(c, secrets, pending)| {
                json!({
                    "name": c.name, "connector": c.connector_id, "status": c.status.as_str(), "account": c.account,
                    "granted_scopes": c.granted_scopes, "warnings": c.warnings, "secrets": secrets,
                    "last_error": c.last_error, "updated_at": c.updated_at, "tools_awaiting_review": pending,
                })
            })
            .collect();
        print_json(&v);
        return;
    }
    if list.is_empty() {
        println!("no connections");
        return;
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|(c, _, pending)| {
            vec![
                c.name.clone(),
                c.status.as_str().to_string(),
                c.granted_scopes.join(" "),
                pending.to_string(),
                c.account.clone().unwrap_or_else(|| "-".into()),
                c.last_error.as_deref().map(|e| clip(e, 90)).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print!("{}", table(&["NAME", "STATUS", "SCOPES", "REVIEWS", "ACCOUNT", "LAST ERROR"], &rows));
    for (c, secrets, pending) in list {
        for w in &c.warnings {
            println!("warning: `{}`: {w}", c.name);
        }
        if *pending > 0 {
            println!("`{}`: {pending} tool(s) changed or new upstream wait for a review: claribi-host tools {} --review", c.name, c.name);
        }
        for s in secrets {
            println!("`{}` secret {} ({}): {}", c.name, s.name, s.kind, goes_to(s));
        }
    }
}

fn goes_to(s: &SecretBinding) -> String {
    if s.goes_to.is_empty() {
        match s.kind.as_str() {
            "own" => "the connector's own value, never attached".into(),
            "legacy" => "sealed by an older host; never handed to a connector (run `claribi-host upgrade`)".into(),
            _ => "attached nowhere".into(),
        }
    } else {
        s.goes_to.join("; ")
    }
}

/// What `connect`, `reconnect`, `check` and `upgrade` established.
pub fn outcome(verb: &str, o: &ConnectOutcome, json: bool) {
    if json {
        print_json(o);
        return;
    }
    println!(
        "{verb} `{}` ({}) at {}{}",
        o.name,
        o.connector,
        o.endpoint,
        o.account.as_ref().map(|a| format!(" as {a}")).unwrap_or_default()
    );
    println!("granted scopes: {}", if o.granted_scopes.is_empty() { "-".into() } else { o.granted_scopes.join(" ") });
    println!("grant:");
    for g in &o.grant {
        println!("  {g}");
    }
    if !o.secrets.is_empty() {
        println!("secrets (the connector holds placeholders; the host attaches each value only here):");
        for s in &o.secrets {
            println!("  {} ({}): {}", s.name, s.kind, goes_to(s));
        }
    }
    for n in &o.not_granted {
        println!("not granted: the connector asks for {n}; grant it with --allow-origin {n} if you trust it with this connection's data");
    }
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
}

/// After a policy file: the grant in force and the secrets' bindings, as comments.
pub fn policy_comments(grant: &[String], secrets: &[SecretBinding]) {
    println!("\n# The grant in force now (the connection's own URLs, then the operator's):");
    for g in grant {
        println!("#   {g}");
    }
    if !secrets.is_empty() {
        println!("# Where each secret may be attached:");
        for s in secrets {
            println!("#   {} ({}): {}", s.name, s.kind, goes_to(s));
        }
    }
}


/// `claribi-host tools NAME --review`: each tool waiting for a review, with its diff.
pub fn reviews(name: &str, pending: &[PendingReview], json: bool) {
    if json {
        print_json(&pending);
        return;
    }
    if pending.is_empty() {
        println!("no tool of `{name}` waits for a review");
        return;
    }
    for p in pending {
        println!("== {} ({}) — withheld from the engine until approved", p.tool, p.kind);
        if p.kind == "changed" {
            println!("{}", p.detail);
        } else {
            println!("{}\n{}", p.detail, p.definition);
        }
        println!();
    }
    let names: Vec<&str> = pending.iter().map(|p| p.tool.as_str()).collect();
    println!("approve with `claribi-host tools {name} --approve {}` (or --approve-all)", names.join(" "));
}

/// `claribi-host tools NAME --approve …`.
pub fn approved(name: &str, tools: &[String], json: bool) {
    if json {
        print_json(&json!({ "connection": name, "approved": tools }));
        return;
    }
    println!("approved {} tool definition(s) of `{name}`: {}; the engine sees them from the next listing", tools.len(), tools.join(", "));
}

/// `claribi-host tools NAME`: the tools the engine sees (and, with --show-blocked, what is withheld).
pub fn tools(listing: &ToolListing, show_blocked: bool, json: bool) {
    if json {
        if show_blocked {
            print_json(listing);
        } else {
            print_json(&listing.tools);
        }
        return;
    }
    let rows: Vec<Vec<String>> = listing
        .tools
        .iter()
        .map(|t| vec![t.name.clone(), clip(t.title.as_deref().unwrap_or("-"), 32), clip(t.description.as_deref().unwrap_or(""), 70)])
        .collect();
    print!("{}", table(&["TOOL", "TITLE", "DESCRIPTION"], &rows));
    let reviews = listing.blocked.iter().filter(|b| b.rule.starts_with("review-")).count();
    println!(
        "{} read-only tool(s); {} write tool(s) withheld by the blocklist",
        listing.tools.len(),
        listing.blocked.len() - reviews
    );
    if reviews > 0 {
        println!("{reviews} tool(s) changed or new upstream wait for a review: add --review to see them");
    }
    if show_blocked && !listing.blocked.is_empty() {
        let rows: Vec<Vec<String>> =
            listing.blocked.iter().map(|b| vec![b.name.clone(), b.rule.clone(), clip(&b.reason, 80)]).collect();
        print!("\n{}", table(&["WITHHELD", "RULE", "WHY"], &rows));
    }
}

/// `claribi-host call ...`.
pub fn tool_output(out: &ToolOutput, json: bool) {
    if json {
        print_json(out);
        return;
    }
    if let Some(v) = &out.structured_content {
        if let Some(t) = render_table(v) {
            print!("{t}");
            return;
        }
        print_json(v);
        return;
    }
    for c in &out.content {
        match c {
            Content::Text { text } => println!("{text}"),
            Content::Image { mime_type, data } => println!("[image {mime_type}, {} bytes base64]", data.len()),
            Content::Audio { mime_type, data } => println!("[audio {mime_type}, {} bytes base64]", data.len()),
            Content::Other { value } => println!("{value}"),
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{} items]", a.len()),
        Value::Object(_) => "{…}".into(),
        other => other.to_string(),
    }
}

/// A list-like result (`{"data": [...]}` or a top-level array of objects) as a table of its first
/// scalar columns; `None` for anything else.
pub fn render_table(v: &Value) -> Option<String> {
    let (rows, extra) = match v {
        Value::Array(a) => (a, None),
        Value::Object(o) => {
            let (_, arr) = o.iter().find(|(_, v)| v.as_array().is_some_and(|a| a.first().is_some_and(Value::is_object)))?;
            let rest: Vec<String> = o
                .iter()
                .filter(|(_, v)| !v.is_array() && !v.is_object())
                .map(|(k, v)| format!("{k}: {}", scalar(v)))
                .collect();
            (arr.as_array()?, Some(rest.join(", ")))
        }
        _ => return None,
    };
    let first = rows.first()?.as_object()?;
    let cols: Vec<String> = first
        .iter()
        .filter(|(_, v)| !v.is_array() && !v.is_object())
        .map(|(k, _)| k.clone())
        .take(7)
        .collect();
    if cols.is_empty() {
        return None;
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| clip(&r.get(c).map(scalar).unwrap_or_default(), 60)).collect())
        .collect();
    let headers: Vec<&str> = cols.iter().map(String::as_str).collect();
    let mut out = table(&headers, &body);
    if let Some(e) = extra.filter(|e| !e.is_empty()) {
        out.push_str(&format!("({} rows; {e})\n", rows.len()));
    } else {
        out.push_str(&format!("({} rows)\n", rows.len()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
    }

    #[test]
    fn list_results_render_as_tables() {
        let v = json!({"data": [{"id": "oppo_1", "value": 100, "tags": []}], "has_more": false});
        let t = render_table(&v).unwrap();
        assert!(t.starts_with("id"), "{t}");
        assert!(t.contains("oppo_1"));
        assert!(t.contains("has_more: false"));
        assert!(render_table(&json!({"name": "x"})).is_none());
    }
}

fn utc_secs(unix_secs: i64) -> String {
    chrono::DateTime::from_timestamp(unix_secs, 0).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_else(|| unix_secs.to_string())
}

fn utc(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| unix_ms.to_string())
}

/// `claribi-host engine-token list`.
pub fn engine_tokens(list: &[EngineTokenRecord], json: bool) {
    if json {
        print_json(&list);
        return;
    }
    if list.is_empty() {
        println!("no engine tokens; `serve --http` answers loopback only. Create one with `claribi-host engine-token create NAME`");
        return;
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                utc_secs(t.created_at),
                t.revoked_at.map(|r| format!("revoked {}", utc_secs(r))).unwrap_or_else(|| "working".into()),
            ]
        })
        .collect();
    print!("{}", table(&["NAME", "CREATED", "STATE"], &rows));
}

/// `claribi-host audit`.
pub fn audit(entries: &[AuditEntry], json: bool) {
    if json {
        let v: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                v["at"] = json!(utc(e.at_ms));
                v
            })
            .collect();
        print_json(&v);
        return;
    }
    if entries.is_empty() {
        println!("no engine calls recorded for that selection");
        return;
    }
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                utc(e.at_ms),
                clip(&e.engine, 24),
                clip(&e.connection, 24),
                clip(&e.tool, 40),
                e.outcome.clone(),
                e.bytes.to_string(),
                e.duration_ms.to_string(),
                e.arguments_sha256.chars().take(12).collect(),
                clip(&e.replica, 32),
            ]
        })
        .collect();
    print!("{}", table(&["TIME (UTC)", "ENGINE", "CONNECTION", "TOOL", "OUTCOME", "BYTES", "MS", "ARGS SHA-256", "REPLICA"], &rows));
}
