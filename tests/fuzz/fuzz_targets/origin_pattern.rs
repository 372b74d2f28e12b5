//! Origin patterns and URLs: parsing and matching never panic; a wildcard never grants a special
//! address.
#![no_main]
use libfuzzer_sys::fuzz_target;

use claribi_fuzz::policy::{self, Method, Target};
use claribi_fuzz::wire::addresses;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (pattern, url) = text.split_once('\n').unwrap_or((text, "https://example.com/"));
    let Ok(p) = policy::OriginPattern::parse(pattern) else { return };
    let Ok(origin) = policy::Origin::parse(url) else { return };
    let grant = policy::Grant::parse_list([pattern]).expect("a parsed pattern forms a grant");
    let allowed = p.matches(&origin);
    if let Ok(target) = Target::parse(url) {
        assert_eq!(allowed, grant.allows(Method::Get, &target), "an origin-wide grant allows every path");
    }
    if let (Some(ip), Ok(target)) = (origin.ip(), Target::parse(url)) {
        if addresses::is_special(ip) && !pattern.contains(&origin.host) && !pattern.contains("localhost") {
            assert!(!grant.allows_address(Method::Get, &target, ip), "{pattern} must not grant {ip}");
        }
    }
});
