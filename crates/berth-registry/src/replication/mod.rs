//! Replication: the registry's replication configuration (stored as ECR describes it), and
//! per image the status of its copy to each destination. A push of a manifest into a
//! repository a rule's filters match records, in the same transaction, an `IN_PROGRESS`
//! status per destination; the [`worker`] copies blobs and manifest and records `COMPLETE`
//! or, after [`MAX_ATTEMPTS`] failures, `FAILED`.
//!
//! A destination is a region and a registry id. This account's id names another region of
//! this Berth (copied in-process); another id names a peer Berth the operator configured
//! ([`Peers`]), reached through its ECR API and `/v2/`.

mod worker;

pub use worker::Pass;

use std::sync::Arc;

use berth_store::{Compare, Op};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::{Registry, Scope, decode, encode};

/// Failed copies of one image to one destination before its status is `FAILED`.
pub const MAX_ATTEMPTS: u32 = 3;

/// ECR's limit on distinct destinations over all rules.
const MAX_DESTINATIONS: usize = 25;

/// Another Berth registry replication can copy to.
pub trait Peer: Send + Sync {
    /// The peer's endpoint, `http[s]://HOST:PORT` (its API and `/v2/`).
    fn endpoint(&self) -> &str;
    /// Basic credentials for the peer's `/v2/`: an ECR token the peer issued.
    fn login(&self) -> BoxFuture<'_, std::result::Result<(String, String), String>>;
    /// Creates `repository` on the peer unless it exists.
    fn ensure_repository<'a>(&'a self, repository: &'a str) -> BoxFuture<'a, std::result::Result<(), String>>;
}

/// The peers the operator configured, by destination region and registry id.
pub trait Peers: Send + Sync {
    fn peer(&self, region: &str, registry_id: &str) -> Option<Arc<dyn Peer>>;
}

/// The copy of one image to one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub region: String,
    pub registry_id: String,
    /// `IN_PROGRESS`, `COMPLETE` or `FAILED`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_code: Option<String>,
    #[serde(default)]
    pub attempts: u32,
    /// Bumped by every push of the image, so a copy that raced a newer push is redone.
    #[serde(default)]
    pub generation: u64,
}

fn invalid(why: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: '{why}'"
    ))
}

fn list<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn text<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// ECR's repository filter pattern `^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$`.
pub fn valid_filter(filter: &str) -> bool {
    let parts: Vec<&str> = filter.split('/').collect();
    let (last, dirs) = parts.split_last().expect("split yields one part");
    let body_ok =
        |p: &str| p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    let starts_alnum = |p: &str| p.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    dirs.iter().all(|d| starts_alnum(d) && body_ok(d)) && body_ok(last) && (last.is_empty() || starts_alnum(last))
}

/// The destinations the configuration's rules copy repository `repo` to.
pub fn destinations(config: &Value, repo: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for rule in list(config, "rules") {
        let filters = list(rule, "repositoryFilters");
        if !filters.is_empty() && !filters.iter().any(|f| repo.starts_with(text(f, "filter"))) {
            continue;
        }
        for d in list(rule, "destinations") {
            let dest = (text(d, "region").to_string(), text(d, "registryId").to_string());
            if !out.contains(&dest) {
                out.push(dest);
            }
        }
    }
    out
}

impl Registry {
    /// The replication configuration (no rules when none was put).
    pub fn replication_configuration(&self, scope: &Scope) -> Result<Value> {
        Ok(self.read_record(&scope.keys().registry("replication"))?.map(|(_, c)| c).unwrap_or(json!({"rules": []})))
    }

    /// Checks a configuration as PutReplicationConfiguration must: every destination is
    /// another region of this Berth or a configured peer, and the filters are ECR's.
    pub fn check_replication(&self, scope: &Scope, config: &Value) -> Result<()> {
        let mut all = Vec::new();
        for rule in list(config, "rules") {
            for d in list(rule, "destinations") {
                let (region, id) = (text(d, "region"), text(d, "registryId"));
                if id == self.options.account && region == scope.region {
                    return Err(invalid("Replication destination cannot be the same as the source registry"));
                }
                if id != self.options.account && self.peer(region, id).is_none() {
                    return Err(invalid(&format!(
                        "No Berth registry is configured for registry {id} in region {region} (see --registry-peers-file)"
                    )));
                }
                all.push((region, id));
            }
            if let Some(f) = list(rule, "repositoryFilters").iter().find(|f| !valid_filter(text(f, "filter"))) {
                return Err(invalid(&format!("Invalid repository filter '{}'", text(f, "filter"))));
            }
        }
        all.sort();
        all.dedup();
        if all.len() > MAX_DESTINATIONS {
            return Err(invalid(&format!("at most {MAX_DESTINATIONS} distinct destinations are allowed")));
        }
        Ok(())
    }

    pub async fn put_replication_configuration(&self, scope: &Scope, config: Value) -> Result<()> {
        self.check_replication(scope, &config)?;
        self.edit_record(&scope.keys().registry("replication"), |_: Option<Value>| Ok((Some(config.clone()), ()))).await
    }

    fn peer(&self, region: &str, registry_id: &str) -> Option<Arc<dyn Peer>> {
        self.peers.get().and_then(|p| p.peer(region, registry_id))
    }

    /// What a push of `digest` into `repo` adds to its transaction so the image is copied:
    /// an `IN_PROGRESS` status per destination. Whether there is any.
    pub(crate) fn replication_ops(
        &self,
        scope: &Scope,
        repo: &str,
        digest: &Digest,
        compares: &mut Vec<Compare>,
        ops: &mut Vec<Op>,
    ) -> Result<bool> {
        let wanted = destinations(&self.replication_configuration(scope)?, repo);
        if wanted.is_empty() {
            return Ok(false);
        }
        let key = scope.keys().replication(repo, &digest.to_string());
        let current = self.store.get(&key)?;
        compares.push(Compare::unchanged(&key, current.as_ref().map_or(0, |kv| kv.mod_revision)));
        let mut statuses: Vec<Status> = current.as_ref().map(decode).transpose()?.unwrap_or_default();
        for (region, registry_id) in wanted {
            let previous = statuses.iter().position(|s| s.region == region && s.registry_id == registry_id);
            let generation = previous.map_or(0, |i| statuses[i].generation + 1);
            if let Some(i) = previous {
                statuses.remove(i);
            }
            let status = "IN_PROGRESS".to_string();
            statuses.push(Status { region, registry_id, status, failure_code: None, attempts: 0, generation });
        }
        ops.push(Op::put(&key, encode(&statuses)));
        Ok(true)
    }

    /// The replication statuses of image `digest` of `repo` (none when it was never copied).
    pub fn replication_statuses(&self, scope: &Scope, repo: &str, digest: &str) -> Result<Vec<Status>> {
        Ok(self.read_record(&scope.keys().replication(repo, digest))?.map(|(_, s)| s).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_pick_destinations_by_repository_prefix() {
        let config = json!({"rules": [
            {"destinations": [{"region": "eu-west-1", "registryId": "000000000000"}],
             "repositoryFilters": [{"filter": "prod", "filterType": "PREFIX_MATCH"}]},
            {"destinations": [{"region": "eu-west-1", "registryId": "000000000000"},
                              {"region": "us-west-2", "registryId": "111111111111"}]}]});
        assert_eq!(destinations(&config, "prod/web").len(), 2);
        assert_eq!(destinations(&config, "dev").len(), 2, "the rule without filters covers all");
        let only_prod = json!({"rules": [config["rules"][0].clone()]});
        assert!(destinations(&only_prod, "dev").is_empty());
        for ok in ["prod", "team/web", "a-", "ab"] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["Prod", "/x", "a b", "-a"] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }
}
