//! Pull-through cache rules: a repository prefix of this registry mapped to an upstream
//! registry. A pull of `PREFIX/NAME:TAG` that the repository lacks fetches `NAME:TAG` from
//! the upstream, stores it and serves it ([`import`]). Rules are stored as ECR describes
//! them, by prefix (without a trailing `/`); `ROOT` covers every name no other rule covers.

mod import;

use std::path::PathBuf;

use berth_store::StoreExt;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{RegistryError, Result};
use crate::templates::{ROOT, covering, normalize};
use crate::upstream::{Remote, is_loopback, parse_url};
use crate::{Registry, Scope, decode};

/// The upstream registries ECR names, and the hosts they live at (`*` any run).
const KNOWN_UPSTREAMS: &[(&str, &str)] = &[
    ("ecr-public", "public.ecr.aws"),
    ("docker-hub", "registry-1.docker.io"),
    ("quay", "quay.io"),
    ("k8s", "registry.k8s.io"),
    ("github-container-registry", "ghcr.io"),
    ("gitlab-container-registry", "registry.gitlab.com"),
    ("chainguard", "cgr.dev"),
    ("azure-container-registry", "*.azurecr.io"),
    ("ecr", "*.dkr.ecr.*.amazonaws.com"),
];

fn text<'v>(rule: &'v Value, key: &str) -> Option<&'v str> {
    rule.get(key).and_then(Value::as_str)
}

/// The `upstreamRegistry` a URL's host is, if ECR knows it.
pub fn known_upstream(host: &str) -> Option<&'static str> {
    KNOWN_UPSTREAMS.iter().find(|(_, pattern)| crate::access::wildcard(pattern, host)).map(|(kind, _)| *kind)
}

/// Where a rule's credentials live: `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME` is
/// the file `NAME` under the secrets directory, as the agent reads `repositoryCredentials`.
/// ECR requires names under `ecr-pullthroughcache/`.
pub fn secret_file(dir: &std::path::Path, arn: &str) -> Result<PathBuf> {
    let invalid = || {
        RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'credentialArn' failed to satisfy constraint: '{arn} is not a secret ARN under ecr-pullthroughcache/'"
        ))
    };
    let (head, name) = arn.split_once(":secret:").ok_or_else(invalid)?;
    let rest = name.strip_prefix("ecr-pullthroughcache/").ok_or_else(invalid)?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
    let segments_ok = rest.split('/').all(|s| !s.is_empty() && s != "." && s != "..");
    if !head.starts_with("arn:aws:secretsmanager:") || !segments_ok || !rest.chars().all(allowed) {
        return Err(invalid());
    }
    Ok(dir.join(name))
}

/// Whether `host` names the registry at `own` (a loopback name for a loopback address counts,
/// with the same port): a rule pulling from its own registry would loop.
fn is_this_registry(host: &str, own: &str) -> bool {
    let port = |h: &str| h.rsplit_once(':').map(|(_, p)| p.to_string());
    host == own || (is_loopback(host) && is_loopback(own) && port(host).is_some() && port(host) == port(own))
}

#[derive(Deserialize)]
struct Secret {
    username: String,
    password: String,
}

impl Registry {
    pub fn pull_through_rules(&self, scope: &Scope) -> Result<Vec<Value>> {
        self.store.list(&scope.keys().pull_through_rules())?.iter().map(decode).collect()
    }

    /// The basic credentials of the secret `arn`.
    pub fn secret(&self, arn: &str) -> Result<(String, String)> {
        let path = secret_file(&self.options.secrets_dir, arn)?;
        let raw = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RegistryError::SecretNotFound(format!(
                "the secret {arn} does not exist ({} is missing)",
                path.display()
            )),
            _ => RegistryError::SecretUnreadable(format!("the secret {arn} cannot be read: {e}")),
        })?;
        let secret: Secret = serde_json::from_slice(&raw).map_err(|e| {
            RegistryError::SecretUnreadable(format!("the secret {arn} is not JSON with a username and a password: {e}"))
        })?;
        Ok((secret.username, secret.password))
    }

    /// Checks a rule as CreatePullThroughCacheRule must: an upstream Berth may pull from (and
    /// that matches `upstreamRegistry` when one is named), readable credentials if named.
    pub fn check_pull_through_rule(&self, rule: &Value) -> Result<()> {
        let url = text(rule, "upstreamRegistryUrl").unwrap_or_default();
        let (host, _) = parse_url(url, false).map_err(RegistryError::UnsupportedUpstream)?;
        if is_this_registry(&host, &self.options.host) {
            return Err(RegistryError::UnsupportedUpstream(format!("'{url}' is this registry")));
        }
        if let Some(kind) = text(rule, "upstreamRegistry")
            && known_upstream(&host) != Some(kind)
        {
            return Err(RegistryError::UnsupportedUpstream(format!("'{url}' is not the address of a {kind} registry")));
        }
        if text(rule, "ecrRepositoryPrefix") == Some(ROOT)
            && text(rule, "upstreamRepositoryPrefix").is_some_and(|p| p != ROOT)
        {
            return Err(RegistryError::InvalidParameter(
                "Invalid parameter at 'upstreamRepositoryPrefix' failed to satisfy constraint: 'an upstream repository prefix needs an ecrRepositoryPrefix other than ROOT'".into(),
            ));
        }
        if let Some(arn) = text(rule, "credentialArn") {
            self.secret(arn)?;
        }
        Ok(())
    }

    /// Stores a new rule (checked first).
    pub async fn create_pull_through_rule(&self, scope: &Scope, rule: Value) -> Result<Value> {
        self.check_pull_through_rule(&rule)?;
        let prefix = text(&rule, "ecrRepositoryPrefix").unwrap_or_default().to_string();
        self.edit_record(&scope.keys().pull_through_rule(normalize(&prefix)), |current: Option<Value>| match current {
            Some(_) => Err(RegistryError::PullThroughRuleExists(prefix.clone())),
            None => Ok((Some(rule.clone()), rule.clone())),
        })
        .await
    }

    /// Changes the rule of `prefix` with `edit` (and checks it again); returns it changed.
    pub async fn update_pull_through_rule(
        &self,
        scope: &Scope,
        prefix: &str,
        edit: impl Fn(&mut Value),
    ) -> Result<Value> {
        let missing = || RegistryError::PullThroughRuleNotFound(prefix.to_string());
        self.update_record(&scope.keys().pull_through_rule(normalize(prefix)), missing, |rule| {
            edit(rule);
            self.check_pull_through_rule(rule)
        })
        .await
    }

    pub async fn delete_pull_through_rule(&self, scope: &Scope, prefix: &str) -> Result<Value> {
        let missing = || RegistryError::PullThroughRuleNotFound(prefix.to_string());
        self.remove_record(&scope.keys().pull_through_rule(normalize(prefix)), missing).await
    }

    /// The rule of `prefix`.
    pub fn pull_through_rule(&self, scope: &Scope, prefix: &str) -> Result<Value> {
        self.read_record(&scope.keys().pull_through_rule(normalize(prefix)))?
            .map(|(_, rule)| rule)
            .ok_or_else(|| RegistryError::PullThroughRuleNotFound(prefix.to_string()))
    }

    /// Whether the rule of `prefix` reaches its upstream with its credentials: `Ok(rule)`
    /// and the failure, if any.
    pub async fn validate_pull_through_rule(&self, scope: &Scope, prefix: &str) -> Result<(Value, Option<String>)> {
        let rule = self.pull_through_rule(scope, prefix)?;
        let outcome = match self.remote_of(&rule) {
            Ok(remote) => remote.check().await.err(),
            Err(e) => Some(e.to_string()),
        };
        Ok((rule, outcome))
    }

    /// A client of the rule's upstream, with its credentials.
    fn remote_of(&self, rule: &Value) -> Result<Remote> {
        let credentials = text(rule, "credentialArn").map(|arn| self.secret(arn)).transpose()?;
        Remote::new(text(rule, "upstreamRegistryUrl").unwrap_or_default(), false, credentials)
    }

    /// The rule covering repository `name`, and the upstream repository the name maps to.
    pub fn pull_through_rule_for(&self, scope: &Scope, name: &str) -> Result<Option<(Value, String)>> {
        let rules = self.pull_through_rules(scope)?;
        let prefix_of = |r: &Value| text(r, "ecrRepositoryPrefix").unwrap_or_default().to_string();
        let Some(prefix) = covering(name, rules.iter().map(|r| text(r, "ecrRepositoryPrefix").unwrap_or_default()))
            .map(str::to_string)
        else {
            return Ok(None);
        };
        let rule = rules.into_iter().find(|r| prefix_of(r) == prefix).expect("the covering prefix is a rule's");
        let rest = if prefix == ROOT { name } else { &name[normalize(&prefix).len() + 1..] };
        let upstream = match text(&rule, "upstreamRepositoryPrefix").filter(|p| *p != ROOT) {
            Some(p) => format!("{}/{rest}", normalize(p)),
            None => rest.to_string(),
        };
        Ok(Some((rule, upstream)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing;

    #[test]
    fn secrets_live_under_ecr_pullthroughcache() {
        let dir = std::path::Path::new("/s");
        let arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/hub";
        assert_eq!(secret_file(dir, arn).unwrap(), dir.join("ecr-pullthroughcache/hub"));
        for bad in [
            "arn:aws:secretsmanager:us-east-1:0:secret:other/hub",
            "arn:aws:secretsmanager:us-east-1:0:secret:ecr-pullthroughcache/../x",
            "arn:aws:s3:::secret:ecr-pullthroughcache/hub",
        ] {
            assert!(secret_file(dir, bad).is_err(), "{bad}");
        }
        assert_eq!(known_upstream("registry-1.docker.io"), Some("docker-hub"));
        assert_eq!(known_upstream("x.azurecr.io"), Some("azure-container-registry"));
        assert_eq!(known_upstream("127.0.0.1:5000"), None);
        assert!(is_this_registry("localhost:5000", "127.0.0.1:5000"));
        assert!(!is_this_registry("localhost:5001", "127.0.0.1:5000"));
    }

    #[tokio::test]
    async fn rules_map_names_to_upstream_repositories() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        let rule = |prefix: &str, upstream_prefix: Option<&str>| {
            let mut v = json!({"ecrRepositoryPrefix": prefix, "upstreamRegistryUrl": "http://127.0.0.1:5999"});
            if let Some(p) = upstream_prefix {
                v["upstreamRepositoryPrefix"] = json!(p);
            }
            v
        };
        r.create_pull_through_rule(&s, rule("hub", None)).await.unwrap();
        r.create_pull_through_rule(&s, rule("team/lib", Some("library"))).await.unwrap();
        assert!(matches!(
            r.create_pull_through_rule(&s, rule("hub/", None)).await,
            Err(RegistryError::PullThroughRuleExists(_))
        ));
        assert_eq!(r.pull_through_rule_for(&s, "hub/busybox").unwrap().unwrap().1, "busybox");
        assert_eq!(r.pull_through_rule_for(&s, "team/lib/alpine").unwrap().unwrap().1, "library/alpine");
        assert!(r.pull_through_rule_for(&s, "other/x").unwrap().is_none());
        r.create_pull_through_rule(&s, rule("ROOT", None)).await.unwrap();
        assert_eq!(r.pull_through_rule_for(&s, "other/x").unwrap().unwrap().1, "other/x");
        for (bad, why) in [
            (json!({"ecrRepositoryPrefix": "x1", "upstreamRegistryUrl": "http://10.1.2.3:5000"}), "plain http"),
            (json!({"ecrRepositoryPrefix": "x2", "upstreamRegistryUrl": "quay.io", "upstreamRegistry": "k8s"}), "kind"),
            (json!({"ecrRepositoryPrefix": "x3", "upstreamRegistryUrl": "127.0.0.1:5000"}), "this registry"),
        ] {
            assert!(
                matches!(r.create_pull_through_rule(&s, bad).await, Err(RegistryError::UnsupportedUpstream(_))),
                "{why}"
            );
        }
        let missing = json!({"ecrRepositoryPrefix": "x4", "upstreamRegistryUrl": "quay.io",
            "credentialArn": "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/none"});
        assert!(matches!(r.create_pull_through_rule(&s, missing).await, Err(RegistryError::SecretNotFound(_))));
        assert_eq!(r.pull_through_rules(&s).unwrap().len(), 3);
    }
}
