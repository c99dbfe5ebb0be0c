//! Name rules shared by clusters, families, containers and services.

/// Up to 255 letters, digits, hyphens and underscores: ECS's rule for cluster, family,
/// container and service names.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `name` is a valid CloudWatch Logs group name: 1-512 of `a-zA-Z0-9_-/.#`, not
/// starting with `aws/` (reserved for AWS's own groups).
pub fn valid_log_group_name(name: &str) -> bool {
    (1..=512).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-/.#".contains(&b))
        && !name.starts_with("aws/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("web-server_2"));
        assert!(is_valid_name(&"a".repeat(255)));
        for bad in ["", "a b", "a/b", "a:b", "é", &"a".repeat(256)] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }
}
