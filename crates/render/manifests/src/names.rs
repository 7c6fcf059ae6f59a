//! Kubernetes' rules for names (RFC 1123), shared by every check of a name the user writes.

/// An RFC 1123 label: 1–63 lower-case letters, digits and `-`, not starting or ending with `-`
/// (namespaces, cluster names).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An RFC 1123 subdomain: labels joined by `.`, at most 253 characters (node names, DNS domains).
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(is_dns_label("ip-10-0-1-23"));
        assert!(!is_dns_label("Node-2") && !is_dns_label("-a") && !is_dns_label("a_b") && !is_dns_label(""));
        assert!(is_dns_subdomain("ip-10-0-1-23.ec2.internal"));
        assert!(!is_dns_subdomain("a..b") && !is_dns_subdomain(".a") && !is_dns_subdomain(&"a".repeat(254)));
    }
}
