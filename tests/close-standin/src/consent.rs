//! The HTML pages of the authorization endpoint: the consent page and the error page.
//!
//! On Close the consent screen lives on app.close.com; the user picks an organization and the scope
//! (`close-mcp.md` §2.1, from the Claude connector and Cursor flows). Its markup is unknown, so the stand-in
//! renders a plain page that a person can use in a browser and a test can read:
//! * radio buttons `organization_id` for the dataset's organization (checked) and "Northwind Sandbox";
//! * the requested scope, space-separated in a `<code class="requested-scope">`, with one line per value;
//! * a select `access_level` (the requested `mcp.*` scope and the narrower ones) when an `mcp.*` scope was
//!   requested;
//! * a hidden `request_id`, and two submit buttons `decision=approve` / `decision=deny`;
//! * the form posts `application/x-www-form-urlencoded` to the issuer's authorization endpoint.
//!
//! Errors that cannot be redirected (unknown client, unregistered redirect URI, stale consent request)
//! are a 400 page with the one-line message in `<p class="error">`.

use crate::catalog::Scope;
use crate::oauth::{ConsentRequest, OFFLINE_ACCESS};

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:34rem;margin:3rem auto;background:#fff;border-radius:8px;padding:2rem;box-shadow:0 1px 4px #0002}\
fieldset{border:1px solid #ddd;border-radius:6px;margin:1rem 0}label{display:block;margin:.3rem 0}\
.buttons{display:flex;gap:1rem}button{padding:.5rem 1.5rem;font-size:1rem}.error{color:#b00020}";

fn scope_description(value: &str) -> &'static str {
    match Scope::parse(value) {
        Some(Scope::Read) => "Read leads, contacts, opportunities, activities and reports",
        Some(Scope::WriteSafe) => "Also create and update records",
        Some(Scope::WriteDestructive) => "Also delete and merge records",
        None if value == OFFLINE_ACCESS => "Stay connected (refresh tokens)",
        None => "",
    }
}

/// The consent page.
pub(crate) fn consent_page(request: &ConsentRequest) -> String {
    let client = request
        .client_name
        .clone()
        .unwrap_or_else(|| request.client_id.clone());
    let client = escape(&client);
    let scope = request.scope.to_string();
    let mut organizations = String::new();
    for (i, org) in request.organizations.iter().enumerate() {
        let note = if i == 0 {
            ""
        } else {
            " <small>(no data)</small>"
        };
        organizations.push_str(&format!(
            "<label><input type=\"radio\" name=\"organization_id\" value=\"{}\"{}> {}{note}</label>\n",
            escape(&org.id),
            if i == 0 { " checked" } else { "" },
            escape(&org.name),
        ));
    }
    let mut scope_lines = String::new();
    for value in scope.split(' ').filter(|v| !v.is_empty()) {
        scope_lines.push_str(&format!(
            "<li><code>{}</code> – {}</li>\n",
            escape(value),
            scope_description(value)
        ));
    }
    let level = match request.scope.highest() {
        None => String::new(),
        Some(highest) => {
            let options: String = Scope::ALL
                .iter()
                .filter(|s| highest.includes(**s))
                .map(|s| {
                    format!(
                        "<option value=\"{s}\"{}>{s}</option>",
                        if *s == highest { " selected" } else { "" }
                    )
                })
                .collect();
            format!(
                "<label>Access level <select name=\"access_level\">{options}</select></label>\n"
            )
        }
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<title>Authorize {client} – Close (local stand-in)</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
<h1>Authorize {client}</h1>\n\
<p><strong>{client}</strong> wants to use your Close account through the MCP server <code>{resource}</code>. \
You will be sent back to <code>{redirect}</code>.</p>\n\
<form method=\"post\" action=\"{action}\">\n\
<input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\n\
<fieldset>\n<legend>Organization</legend>\n{organizations}</fieldset>\n\
<fieldset>\n<legend>Requested scope</legend>\n<p><code class=\"requested-scope\">{scope_text}</code></p>\n\
<ul>\n{scope_lines}</ul>\n{level}</fieldset>\n\
<div class=\"buttons\">\n<button type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\n\
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\n</div>\n\
</form>\n</main>\n</body>\n</html>\n",
        resource = escape(&request.resource),
        redirect = escape(&request.redirect_uri),
        action = escape(&request.action),
        request_id = escape(&request.request_id),
        scope_text = escape(&scope),
    )
}

/// The 400 page for errors that must not be redirected.
pub(crate) fn error_page(message: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<title>Authorization error – Close (local stand-in)</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
<h1>Authorization error</h1>\n<p class=\"error\">{}</p>\n\
<p>The application that sent you here is misconfigured, or the request is stale. You were not redirected.</p>\n\
</main>\n</body>\n</html>\n",
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::{ConsentOrganization, ScopeSet};

    fn request(scope: &str) -> ConsentRequest {
        ConsentRequest {
            request_id: "consent_1".into(),
            client_id: "oa2client_x".into(),
            client_name: Some("clariBI <dev>".into()),
            redirect_uri: "http://127.0.0.1:5/cb?a=1&b=2".into(),
            resource: "http://127.0.0.1:9/".into(),
            scope: ScopeSet::parse(scope, true).unwrap(),
            organizations: vec![
                ConsentOrganization {
                    id: "orga_main".into(),
                    name: "Northwind Analytics".into(),
                },
                ConsentOrganization {
                    id: "orga_sandbox".into(),
                    name: "Northwind Sandbox".into(),
                },
            ],
            action: "http://127.0.0.1:10/oauth2/authorize/".into(),
        }
    }

    #[test]
    fn the_consent_page_offers_both_organizations_the_scope_and_two_buttons() {
        let html = consent_page(&request("mcp.write_safe offline_access"));
        assert!(
            html.contains("value=\"orga_main\" checked> Northwind Analytics"),
            "{html}"
        );
        assert!(html.contains("value=\"orga_sandbox\"> Northwind Sandbox"));
        assert!(
            html.contains("<code class=\"requested-scope\">mcp.write_safe offline_access</code>")
        );
        assert!(html.contains("name=\"decision\" value=\"approve\""));
        assert!(html.contains("name=\"decision\" value=\"deny\""));
        assert!(html
            .contains("<form method=\"post\" action=\"http://127.0.0.1:10/oauth2/authorize/\">"));
        assert!(html.contains("<option value=\"mcp.read\">mcp.read</option><option value=\"mcp.write_safe\" selected>"));
        assert!(!html.contains("mcp.write_destructive"));
    }

    #[test]
    fn client_supplied_text_is_escaped() {
        let html = consent_page(&request("mcp.read"));
        assert!(html.contains("clariBI &lt;dev&gt;"));
        assert!(html.contains("cb?a=1&amp;b=2"));
        assert!(!html.contains("<dev>"));
        let page = error_page("redirect_uri '<script>' is not registered");
        assert!(page.contains("&lt;script&gt;"));
    }

    #[test]
    fn without_an_mcp_scope_there_is_no_access_level_choice() {
        let html = consent_page(&request("offline_access"));
        assert!(!html.contains("access_level"));
        assert!(html.contains("<code class=\"requested-scope\">offline_access</code>"));
    }
}
