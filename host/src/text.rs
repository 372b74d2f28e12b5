//! Text from outside (a connector, a server, an operator) made safe to print: one line, bounded, no
//! control characters. Pure, so that the fuzz targets can include it.

/// `one_line`, ending with a full stop (so that a following sentence reads right).
pub fn sentence(s: &str) -> String {
    let mut out = one_line(s);
    if !out.is_empty() && !out.ends_with(['.', '!', '?', '…']) {
        out.push('.');
    }
    out
}

/// Make a connector-supplied message safe to print: one line, bounded, no control characters.
pub fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if out.chars().count() > 400 {
        out = out.chars().take(400).collect::<String>() + "…";
    }
    out
}

