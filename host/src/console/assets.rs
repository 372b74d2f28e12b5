//! Everything the console's pages need, compiled into the binary: no CDN, nothing fetched, so the
//! console works offline. Hand-written HTML, CSS and JavaScript; charts are drawn by `chart.js`, a small
//! SVG renderer for the Vega-Lite subset [`super::charts`] proposes; forms by `form.js` from a tool's
//! JSON Schema.

/// The app's page (a shell; `app.js` fills it).
pub const INDEX_HTML: &str = include_str!("assets/index.html");

const FILES: &[(&str, &str, &[u8])] = &[
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("assets/app.js")),
    ("chart.js", "text/javascript; charset=utf-8", include_bytes!("assets/chart.js")),
    ("form.js", "text/javascript; charset=utf-8", include_bytes!("assets/form.js")),
    ("callback.js", "text/javascript; charset=utf-8", include_bytes!("assets/callback.js")),
    ("app.css", "text/css; charset=utf-8", include_bytes!("assets/app.css")),
    ("logo.svg", "image/svg+xml", include_bytes!("assets/logo.svg")),
];

/// A static file by name: its content type and bytes.
pub fn get(name: &str) -> Option<(&'static str, &'static [u8])> {
    FILES.iter().find(|(n, _, _)| *n == name).map(|(_, mime, bytes)| (*mime, *bytes))
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A page with one message (no script).
pub fn message_page(title: &str, text: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>clariBI console – {t}</title><link rel=\"stylesheet\" href=\"/static/app.css\"><link rel=\"icon\" href=\"/static/logo.svg\"></head>\
<body class=\"standalone\"><main class=\"message\"><img src=\"/static/logo.svg\" alt=\"\" class=\"logo\"><h1>{t}</h1><p>{x}</p></main></body></html>\n",
        t = escape(title),
        x = escape(text)
    )
}

/// The page the OAuth popup lands on: the outcome in one sentence; `callback.js` tells the console's
/// window and closes the popup.
pub fn callback_page(success: bool, message: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>clariBI console – authorization</title>\
<link rel=\"stylesheet\" href=\"/static/app.css\"><script src=\"/static/callback.js\" defer></script></head>\
<body class=\"standalone\"><main class=\"message {c}\" id=\"callback\" data-outcome=\"{c}\"><img src=\"/static/logo.svg\" alt=\"\" class=\"logo\">\
<h1>{h}</h1><p id=\"message\">{m}</p><p class=\"muted\">This window closes by itself.</p></main></body></html>\n",
        c = if success { "ok" } else { "failed" },
        h = if success { "Authorized" } else { "Not authorized" },
        m = escape(message)
    )
}
