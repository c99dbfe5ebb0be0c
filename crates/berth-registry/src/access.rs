//! Who may do what to a repository: the caller a request authenticated as, and the
//! repository and registry policies (IAM-style JSON documents) that can deny key holders an
//! action or allow anonymous callers one.
//!
//! Every key holder acts for the account (Berth has no IAM users), so a key holder may do
//! anything no policy explicitly denies. An anonymous caller may only do what a statement
//! with `Principal: "*"` allows (and none denies).

use serde_json::Value;

use crate::error::{RegistryError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    /// A holder of one of the server's access keys (through SigV4 or a registry token).
    Account {
        access_key: String,
    },
    /// The registry itself, carrying out work a request that was authorized asked for: the
    /// import of a pull-through cache, or replication into another region.
    Registry,
}

/// Wildcard match with `*` (any run) and `?` (one character), as IAM and ECR filters use.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((bp, bt)) = backtrack {
            pi = bp + 1;
            ti = bt + 1;
            backtrack = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn one_or_many(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn statements(policy: &Value) -> Vec<&Value> {
    match policy.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => Vec::new(),
    }
}

/// Checks a policy document as SetRepositoryPolicy must; returns it parsed.
pub fn parse_policy(text: &str) -> Result<Value> {
    parse(text, "repository")
}

/// Checks a registry policy document (PutRegistryPolicy): a policy whose actions are all
/// ECR actions (the V2 registry policy scope).
pub fn parse_registry_policy(text: &str) -> Result<Value> {
    let policy = parse(text, "registry")?;
    let ecr_only = statements(&policy)
        .iter()
        .all(|s| one_or_many(s.get("Action")).iter().all(|a| a.to_ascii_lowercase().starts_with("ecr:")));
    if !ecr_only {
        return Err(invalid_policy("registry"));
    }
    Ok(policy)
}

fn invalid_policy(kind: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid {kind} policy provided'"
    ))
}

fn parse(text: &str, kind: &str) -> Result<Value> {
    let policy: Value = serde_json::from_str(text).map_err(|_| invalid_policy(kind))?;
    let list = statements(&policy);
    if list.is_empty() {
        return Err(invalid_policy(kind));
    }
    for s in list {
        let effect_ok = matches!(s.get("Effect").and_then(Value::as_str), Some("Allow" | "Deny"));
        if !effect_ok || one_or_many(s.get("Action")).is_empty() || s.get("Principal").is_none() {
            return Err(invalid_policy(kind));
        }
    }
    Ok(policy)
}

fn names_caller(principal: Option<&Value>, caller: &Caller, account: &str) -> bool {
    let names: Vec<&str> = match principal {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Object(o)) => one_or_many(o.get("AWS")),
        _ => Vec::new(),
    };
    names.iter().any(|n| {
        *n == "*"
            || (matches!(caller, Caller::Account { .. })
                && (*n == account || *n == format!("arn:aws:iam::{account}:root")))
    })
}

/// Whether `caller` may perform `action` (e.g. `ecr:BatchGetImage`) under `policies` (the
/// repository's and the registry's, when they have one): an explicit `Deny` in any refuses,
/// an anonymous caller needs an `Allow` in one.
pub fn check(policies: &[Option<&str>], caller: &Caller, account: &str, action: &str) -> Result<()> {
    if *caller == Caller::Registry {
        return Ok(());
    }
    let parsed: Vec<Value> = policies.iter().flatten().filter_map(|p| serde_json::from_str(p).ok()).collect();
    let mut allowed = false;
    for s in parsed.iter().flat_map(statements) {
        let acts = one_or_many(s.get("Action"));
        if !acts.iter().any(|a| wildcard(&a.to_ascii_lowercase(), &action.to_ascii_lowercase())) {
            continue;
        }
        if !names_caller(s.get("Principal"), caller, account) {
            continue;
        }
        match s.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return Err(RegistryError::Denied { action: action.to_string() }),
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    match caller {
        Caller::Account { .. } | Caller::Registry => Ok(()),
        Caller::Anonymous if allowed => Ok(()),
        Caller::Anonymous => Err(RegistryError::Unauthorized),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: fn() -> Caller = || Caller::Account { access_key: "AKID".into() };

    #[test]
    fn wildcards() {
        assert!(wildcard("ecr:*", "ecr:PutImage"));
        assert!(wildcard("prod-*-v?", "prod-web-v1"));
        assert!(!wildcard("prod-*", "dev-web"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*b", "acbx"));
    }

    #[test]
    fn key_holders_may_do_all_not_denied_and_anonymous_only_what_is_allowed() {
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]},
            {"Sid":"nopush","Effect":"Deny","Principal":{"AWS":"*"},"Action":"ecr:PutImage"}]}"#;
        parse_policy(policy).unwrap();
        assert!(check(&[Some(policy)], &KEY(), "000000000000", "ecr:BatchGetImage").is_ok());
        assert!(matches!(
            check(&[Some(policy)], &KEY(), "000000000000", "ecr:PutImage"),
            Err(RegistryError::Denied { .. })
        ));
        assert!(check(&[Some(policy)], &Caller::Anonymous, "000000000000", "ecr:BatchGetImage").is_ok());
        assert!(matches!(
            check(&[Some(policy)], &Caller::Anonymous, "000000000000", "ecr:InitiateLayerUpload"),
            Err(RegistryError::Unauthorized)
        ));
        assert!(matches!(
            check(&[None], &Caller::Anonymous, "0", "ecr:BatchGetImage"),
            Err(RegistryError::Unauthorized)
        ));
        assert!(check(&[None], &KEY(), "0", "ecr:PutImage").is_ok());
    }

    #[test]
    fn a_registry_policy_adds_its_denials_and_grants() {
        let repo = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#;
        let registry = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":["ecr:BatchGetImage","ecr:Put*"]}]}"#;
        parse_registry_policy(registry).unwrap();
        let both = [Some(repo), Some(registry)];
        assert!(matches!(check(&both, &KEY(), "0", "ecr:PutImage"), Err(RegistryError::Denied { .. })));
        assert!(check(&both, &Caller::Anonymous, "0", "ecr:BatchGetImage").is_err(), "a deny anywhere wins");
        assert!(check(&both, &Caller::Registry, "0", "ecr:PutImage").is_ok(), "the registry's own work");
        let grant = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#;
        assert!(check(&[None, Some(grant)], &Caller::Anonymous, "0", "ecr:BatchGetImage").is_ok());
        assert!(
            parse_registry_policy(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#)
                .is_err()
        );
    }

    #[test]
    fn malformed_policies_are_refused() {
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"ecr:*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*"}]}"#,
        ] {
            assert!(parse_policy(bad).is_err(), "{bad}");
        }
    }
}
