//! Replication peers: other Berth registries named in `--registry-peers-file`, each for one
//! replication destination (region and registry id). Berth reaches a peer through its ECR
//! API, signed with the key pair the file gives for it (GetAuthorizationToken,
//! CreateRepository), and pushes to its `/v2/` with the token.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use berth_client::ApiClient;
use berth_registry::replication::{Peer, Peers};
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerConfig {
    region: String,
    registry_id: String,
    endpoint: String,
    access_key: String,
    secret_key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeersFile {
    #[serde(default)]
    peers: Vec<PeerConfig>,
}

struct BerthPeer {
    region: String,
    registry_id: String,
    endpoint: String,
    client: ApiClient,
}

impl Peer for BerthPeer {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn login(&self) -> BoxFuture<'_, Result<(String, String), String>> {
        async move { self.client.registry_login().await.map_err(|e| format!("logging in to {}: {e}", self.endpoint)) }
            .boxed()
    }

    fn ensure_repository<'a>(&'a self, repository: &'a str) -> BoxFuture<'a, Result<(), String>> {
        async move {
            match self.client.ecr("CreateRepository", json!({"repositoryName": repository})).await {
                Ok(_) => Ok(()),
                Err(e) if e.code() == Some("RepositoryAlreadyExistsException") => Ok(()),
                Err(e) => Err(format!("creating {repository} on {}: {e}", self.endpoint)),
            }
        }
        .boxed()
    }
}

/// The peers of a peers file.
pub struct BerthPeers(Vec<Arc<BerthPeer>>);

impl Peers for BerthPeers {
    fn peer(&self, region: &str, registry_id: &str) -> Option<Arc<dyn Peer>> {
        let found = self.0.iter().find(|p| p.region == region && p.registry_id == registry_id)?;
        Some(found.clone() as Arc<dyn Peer>)
    }
}

/// Reads a peers file (none: no peers).
pub fn load(path: Option<&Path>) -> anyhow::Result<BerthPeers> {
    let Some(path) = path else { return Ok(BerthPeers(Vec::new())) };
    let raw = std::fs::read_to_string(path).with_context(|| format!("reading the peers file {}", path.display()))?;
    let file: PeersFile = toml::from_str(&raw).with_context(|| format!("parsing the peers file {}", path.display()))?;
    let mut peers = Vec::new();
    for p in file.peers {
        let endpoint = p.endpoint.trim_end_matches('/').to_string();
        let client = ApiClient::new(&endpoint, &p.access_key, &p.secret_key, &p.region)
            .with_context(|| format!("peer {} in {} ({})", p.registry_id, p.region, path.display()))?;
        peers.push(Arc::new(BerthPeer { region: p.region, registry_id: p.registry_id, endpoint, client }));
    }
    Ok(BerthPeers(peers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_file_names_each_destination() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.toml");
        std::fs::write(&path, "[[peers]]\nregion = \"us-west-2\"\nregistry_id = \"111111111111\"\nendpoint = \"http://127.0.0.1:9\"\naccess_key = \"A\"\nsecret_key = \"S\"\n").unwrap();
        let peers = load(Some(&path)).unwrap();
        assert_eq!(peers.peer("us-west-2", "111111111111").unwrap().endpoint(), "http://127.0.0.1:9");
        assert!(peers.peer("us-west-2", "222222222222").is_none());
        std::fs::write(&path, "[[peers]]\nregion = \"x\"\n").unwrap();
        assert!(load(Some(&path)).is_err(), "incomplete entries are refused");
    }
}
