//! Who may do what to a repository: the caller a request authenticated as, and the
//! repository policy (an IAM-style JSON document) that can deny key holders an action or
//! allow anonymous callers one.
//!
//! Every key holder acts for the account (Berth has no IAM users), so a key holder may do
//! anything a repository policy does not explicitly deny. An anonymous caller may only do
//! what a statement with `Principal: "*"` allows.

use serde_json::Value;

use crate::error::{RegistryError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    /// A holder of one of the server's access keys (through SigV4 or a registry token).
    Account {
        access_key: String,
    },
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
    let invalid = || {
        RegistryError::InvalidParameter(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'"
                .into(),
        )
    };
    let policy: Value = serde_json::from_str(text).map_err(|_| invalid())?;
    let list = statements(&policy);
    if list.is_empty() {
        return Err(invalid());
    }
    for s in list {
        let effect_ok = matches!(s.get("Effect").and_then(Value::as_str), Some("Allow" | "Deny"));
        if !effect_ok || one_or_many(s.get("Action")).is_empty() || s.get("Principal").is_none() {
            return Err(invalid());
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

/// Whether `caller` may perform `action` (e.g. `ecr:BatchGetImage`) under `policy`.
pub fn check(policy: Option<&str>, caller: &Caller, account: &str, action: &str) -> Result<()> {
    let policy = policy.and_then(|p| serde_json::from_str::<Value>(p).ok());
    let mut allowed = false;
    for s in policy.as_ref().map(statements).unwrap_or_default() {
        let acts = one_or_many(s.get("Action"));
        if !acts.iter().any(|a| wildcard(&a.to_ascii_lowercase(), &action.to_ascii_lowercase())) {
            continue;
        }
        if !names_caller(s.get("Principal"), caller, account) {
            continue;
        }
        match s.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return Err(RegistryError::Denied),
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    match caller {
        Caller::Account { .. } => Ok(()),
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
        assert!(check(Some(policy), &KEY(), "000000000000", "ecr:BatchGetImage").is_ok());
        assert!(matches!(check(Some(policy), &KEY(), "000000000000", "ecr:PutImage"), Err(RegistryError::Denied)));
        assert!(check(Some(policy), &Caller::Anonymous, "000000000000", "ecr:BatchGetImage").is_ok());
        assert!(matches!(
            check(Some(policy), &Caller::Anonymous, "000000000000", "ecr:InitiateLayerUpload"),
            Err(RegistryError::Unauthorized)
        ));
        assert!(matches!(check(None, &Caller::Anonymous, "0", "ecr:BatchGetImage"), Err(RegistryError::Unauthorized)));
        assert!(check(None, &KEY(), "0", "ecr:PutImage").is_ok());
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
