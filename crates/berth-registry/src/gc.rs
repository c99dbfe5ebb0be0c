//! Garbage collection: removes blobs nothing references, without racing pushes.
//!
//! Mark: every manifest of every repository names the blobs it keeps (per repository, as
//! links). Sweep, holding the registry's GC lock exclusively (uploads, mounts and manifest
//! puts hold it shared, so none is halfway while the sweep deletes):
//! 1. links no manifest of their repository uses and not touched within the grace period
//!    (a push uploads blobs before its manifest) are deleted, each under a compare that it
//!    is unchanged since the mark: a manifest put touches its links, so it wins the race;
//! 2. blob files no link names any more, past the grace period, are deleted, their store
//!    record first;
//! 3. files without a store record (a crash between rename and commit) and abandoned
//!    uploads past the grace period go too.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use berth_store::{Compare, Op, StoreExt, Txn};

use crate::error::Result;
use crate::{LinkRecord, ManifestRecord, Registry, decode, epoch_seconds, keys};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub links_removed: usize,
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub uploads_removed: usize,
}

impl Registry {
    pub async fn collect_garbage(&self, now: SystemTime) -> Result<Report> {
        let cutoff = epoch_seconds(now) - self.options.gc_grace.as_secs_f64();
        let mut report = Report::default();
        // Mark: (region, repository) → blobs its manifests use.
        let mut used: HashMap<(String, String), HashSet<String>> = HashMap::new();
        let mut links = Vec::new();
        for region in self.regions()? {
            let k = keys::Keys { region: &region };
            let manifests = k.manifests("");
            let manifests = &manifests[..manifests.len() - 1];
            for kv in self.store.list(manifests)? {
                let Some((repo, _)) = keys::split_tail(&kv.key[manifests.len()..]) else { continue };
                let m: ManifestRecord = decode(&kv)?;
                used.entry((region.clone(), repo.to_string())).or_default().extend(m.blobs);
            }
            let all_links = k.links("");
            let all_links = &all_links[..all_links.len() - 1];
            for kv in self.store.list(all_links)? {
                let Some((repo, digest)) = keys::split_tail(&kv.key[all_links.len()..]) else { continue };
                links.push((region.clone(), repo.to_string(), digest.to_string(), kv));
            }
        }

        let _exclusive = self.gc_lock.write().await;
        let mut linked: HashSet<String> = HashSet::new();
        for (region, repo, digest, kv) in links {
            let link: LinkRecord = decode(&kv)?;
            let in_use = used.get(&(region, repo)).is_some_and(|u| u.contains(&digest));
            if in_use || link.touched >= cutoff {
                linked.insert(digest);
                continue;
            }
            let txn =
                Txn::new().when(vec![Compare::unchanged(&kv.key, kv.mod_revision)]).and_then(vec![Op::delete(&kv.key)]);
            if self.store.txn(txn).await?.succeeded {
                report.links_removed += 1;
            } else {
                linked.insert(digest);
            }
        }

        let mut known = HashSet::new();
        for kv in self.store.list(keys::BLOBS)? {
            let digest = kv.key[keys::BLOBS.len()..].to_string();
            let record: LinkRecord = decode(&kv)?;
            if linked.contains(&digest) || record.touched >= cutoff {
                known.insert(digest);
                continue;
            }
            let txn =
                Txn::new().when(vec![Compare::unchanged(&kv.key, kv.mod_revision)]).and_then(vec![Op::delete(&kv.key)]);
            if !self.store.txn(txn).await?.succeeded {
                known.insert(digest);
                continue;
            }
            if let Ok(d) = digest.parse()
                && self.blobs.delete(&d).await?
            {
                report.blobs_removed += 1;
                report.bytes_freed += record.size;
            }
        }
        for (digest, modified) in self.blobs.list().await? {
            if !known.contains(&digest.to_string()) && epoch_seconds(modified) < cutoff {
                let size = self.blobs.size(&digest).await?.unwrap_or(0);
                if self.blobs.delete(&digest).await? {
                    report.blobs_removed += 1;
                    report.bytes_freed += size;
                }
            }
        }

        for (id, modified) in self.blobs.list_uploads().await? {
            if epoch_seconds(modified) >= cutoff {
                continue;
            }
            self.blobs.remove_upload(&id).await?;
            let mut ops = Vec::new();
            for region in self.regions()? {
                ops.push(Op::delete(&keys::Keys { region: &region }.upload(&id)));
            }
            self.store.txn(Txn::new().and_then(ops)).await?;
            report.uploads_removed += 1;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::digest::{Algorithm, Digest};
    use crate::manifest::OCI_MANIFEST;
    use crate::repositories::NewRepository;
    use crate::testing;

    #[tokio::test]
    async fn removes_only_what_no_manifest_uses_after_the_grace_period() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        r.create_repository(&s, NewRepository::named("web")).await.unwrap();
        let mut digests = Vec::new();
        for data in [b"{}".as_slice(), b"layer", b"orphan"] {
            let id = r.start_upload(&s, "web").await.unwrap();
            let d = Digest::of(Algorithm::Sha256, data);
            let body: crate::blobs::ByteStream =
                Box::pin(futures::stream::once(futures::future::ready(Ok(Bytes::copy_from_slice(data)))));
            r.complete_upload(&s, "web", &id, &d.to_string(), Some(body)).await.unwrap();
            digests.push(d);
        }
        let m = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[0].to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digests[1].to_string(), "size": 5}]});
        r.put_manifest(&s, "web", "1", OCI_MANIFEST, m.to_string().as_bytes()).await.unwrap();
        let pending = r.start_upload(&s, "web").await.unwrap();

        assert_eq!(r.collect_garbage(SystemTime::now()).await.unwrap(), Report::default(), "all within grace");
        let later = SystemTime::now() + Duration::from_secs(7200);
        let report = r.collect_garbage(later).await.unwrap();
        assert_eq!((report.links_removed, report.blobs_removed, report.bytes_freed), (1, 1, 6));
        assert_eq!(report.uploads_removed, 1, "an upload idle past the grace period is abandoned");
        assert!(r.upload_status(&s, "web", &pending).await.is_err());
        assert!(r.blob(&s, "web", &digests[1]).await.unwrap().is_some());
        assert!(r.blob(&s, "web", &digests[2]).await.unwrap().is_none());
        assert_eq!(r.blobs.size(&digests[2]).await.unwrap(), None);
        assert_eq!(r.blobs.size(&digests[1]).await.unwrap(), Some(5));
    }
}
