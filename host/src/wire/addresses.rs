//! Which IP addresses are *special*: loopback, private, link-local, cloud metadata, and the other
//! ranges a connector must never reach unless the operator names the address literally.
//!
//! The send-request hook resolves every host name itself and checks each resulting address here
//! before connecting, so a DNS name that resolves to `127.0.0.1` (or an IPv4-mapped IPv6 address such
//! as `::ffff:10.0.0.1`) is caught just like the literal.
//!
//! ```
//! use claribi_host::wire::addresses::is_special;
//! assert!(is_special("127.0.0.1".parse().unwrap()));
//! assert!(is_special("::ffff:169.254.169.254".parse().unwrap()));
//! assert!(!is_special("93.184.216.34".parse().unwrap()));
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address with any IPv4 embedded in IPv6 (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
/// SIIT-translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:aabb:ccdd::`) turned back
/// into that IPv4 address. (The local-use NAT64 prefix `64:ff9b:1::/48` embeds IPv4 at several offsets;
/// it is special as a whole.)
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            // IPv4-compatible (deprecated) ::a.b.c.d, but not :: or ::1.
            if s[..6] == [0, 0, 0, 0, 0, 0] && (s[6] != 0 || s[7] > 1) {
                return IpAddr::V4(embedded(s[6], s[7]));
            }
            // SIIT IPv4-translated ::ffff:0:a.b.c.d (RFC 2765).
            if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
                return IpAddr::V4(embedded(s[6], s[7]));
            }
            // NAT64 well-known prefix 64:ff9b::/96.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return IpAddr::V4(embedded(s[6], s[7]));
            }
            // 6to4 2002:V4ADDR::/48.
            if s[0] == 0x2002 {
                return IpAddr::V4(embedded(s[1], s[2]));
            }
            ip
        }
    }
}

fn embedded(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
}

/// Whether an address is loopback, private, link-local, metadata or otherwise not a public unicast
/// address.
pub fn is_special(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

/// A short name of the range an address falls in, for error messages.
pub fn describe(ip: IpAddr) -> &'static str {
    match canonical(ip) {
        IpAddr::V4(v4) if v4.is_loopback() => "a loopback address",
        IpAddr::V6(v6) if v6.is_loopback() => "a loopback address",
        IpAddr::V4(v4) if v4.is_private() => "a private address",
        IpAddr::V6(v6) if (v6.segments()[0] & 0xfe00) == 0xfc00 => "a private (unique-local) address",
        IpAddr::V4(v4) if v4.is_link_local() => "a link-local or cloud-metadata address",
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => "a link-local address",
        other if is_special(other) => "a reserved or non-public address",
        _ => "a public address",
    }
}

fn special_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_unspecified()             // 0.0.0.0
        || o[0] == 0                // 0.0.0.0/8 "this network"
        || ip.is_loopback()         // 127.0.0.0/8
        || ip.is_private()          // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local()       // 169.254/16, incl. 169.254.169.254 metadata
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 shared (CGNAT; Alibaba metadata 100.100.100.200)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24 IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18)    // 198.18/15 benchmarking
        || ip.is_documentation()    // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || ip.is_multicast()        // 224/4
        || o[0] >= 240 // 240/4 reserved, 255.255.255.255 broadcast
}

fn special_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local (incl. fd00:ec2::254 metadata)
        || (s[0] & 0xffc0) == 0xfe80 // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32 documentation
        || (s[0] == 0x2001 && s[1] == 0) // 2001::/32 Teredo (hides an IPv4 address)
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // 100::/64 discard
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001) // 64:ff9b:1::/48 local-use NAT64 (any IPv4 inside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_ranges_are_recognised() {
        for special in [
            "127.0.0.1", "127.8.9.10", "0.0.0.0", "10.0.0.1", "172.16.5.4", "172.31.255.255",
            "192.168.1.1", "169.254.169.254", "100.100.100.200", "255.255.255.255", "224.0.0.1",
            "198.18.0.1", "::1", "::", "fe80::1", "fd00:ec2::254", "fc00::1", "ff02::1",
            "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
            "64:ff9b::a00:1", "2002:7f00:1::", "2001:db8::1", "2001:0:4136:e378::1",
            "::ffff:0:127.0.0.1", "::ffff:0:a9fe:a9fe", "64:ff9b:1::808:808", "64:ff9b:1:7f00:1::",
        ] {
            assert!(is_special(special.parse().unwrap()), "{special} should be special");
        }
    }

    #[test]
    fn public_addresses_are_not_special() {
        for public in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!is_special(public.parse().unwrap()), "{public} should be public");
        }
    }

    #[test]
    fn embedded_ipv4_is_unwrapped() {
        assert_eq!(canonical("::ffff:127.0.0.1".parse().unwrap()), "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(canonical("64:ff9b::808:808".parse().unwrap()), "8.8.8.8".parse::<IpAddr>().unwrap());
        assert_eq!(canonical("::1".parse().unwrap()), "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn descriptions_name_the_range() {
        assert_eq!(describe("127.0.0.1".parse().unwrap()), "a loopback address");
        assert_eq!(describe("::ffff:10.1.1.1".parse().unwrap()), "a private address");
        assert_eq!(describe("169.254.169.254".parse().unwrap()), "a link-local or cloud-metadata address");
    }
}
