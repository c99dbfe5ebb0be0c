//! This server's etcd session and the elections held with it.
//!
//! A session is an etcd lease this process keeps alive: a keep-alive every third of its TTL.
//! An election is a key bound to the session's lease: whoever creates it leads, and etcd
//! deletes it when the leader's lease runs out, so another server takes over after at most
//! the TTL. No wall clock is compared: the leader counts its lease valid until the TTL runs out
//! from the moment it *sent* its last acknowledged keep-alive (on its own monotonic clock),
//! which is never later than etcd's view of the same lease, and stops leading a second before.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, GetOptions, LeaseClient, PutOptions, Txn, TxnOp, TxnOpResponse};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Etcd, engine};
use crate::StoreError;

/// How long before the lease's end (as this server counts it) the leader stops leading.
const MARGIN: Duration = Duration::from_secs(1);

/// One granted lease and the task keeping it alive.
pub(crate) struct Session {
    pub id: i64,
    valid_until: Arc<Mutex<Instant>>,
    keeper: JoinHandle<()>,
}

impl Session {
    /// Grants a lease of `ttl` and starts keeping it alive.
    pub async fn open(client: &Client, ttl: Duration) -> Result<Self, StoreError> {
        let mut leases = client.lease_client();
        let sent = Instant::now();
        let granted = leases.grant(ttl.as_secs() as i64, None).await.map_err(engine)?;
        let valid_until = Arc::new(Mutex::new(sent + Duration::from_secs(granted.ttl().max(0) as u64)));
        let keeper = tokio::spawn(keep_alive(leases, granted.id(), ttl, valid_until.clone()));
        Ok(Session { id: granted.id(), valid_until, keeper })
    }

    /// Whether the lease still holds, with the margin.
    pub fn valid(&self) -> bool {
        let until = *self.valid_until.lock().unwrap_or_else(|p| p.into_inner());
        !self.keeper.is_finished() && Instant::now() + MARGIN < until
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// Renews the lease every third of its TTL until etcd says it is gone.
async fn keep_alive(mut leases: LeaseClient, id: i64, ttl: Duration, valid_until: Arc<Mutex<Instant>>) {
    let every = ttl / 3;
    loop {
        let (mut keeper, mut answers) = match leases.keep_alive(id).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, lease = id, "etcd session: keep-alive failed; retrying");
                tokio::time::sleep(every / 4).await;
                continue;
            }
        };
        loop {
            let sent = Instant::now();
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout(every, answers.message()).await {
                Ok(Ok(Some(answer))) if answer.ttl() > 0 => {
                    let until = sent + Duration::from_secs(answer.ttl() as u64);
                    *valid_until.lock().unwrap_or_else(|p| p.into_inner()) = until;
                }
                Ok(Ok(Some(_))) => {
                    tracing::warn!(lease = id, "etcd session: the lease expired");
                    return;
                }
                Ok(Ok(None)) | Ok(Err(_)) => break,
                Err(_) => continue,
            }
            tokio::time::sleep(every.saturating_sub(sent.elapsed())).await;
        }
        tokio::time::sleep(every / 4).await;
    }
}

impl Etcd {
    /// This server's session, opening a new one when there is none or it ran out.
    async fn session_id(&self) -> Result<i64, StoreError> {
        let mut session = self.session.lock().await;
        if let Some(s) = session.as_ref().filter(|s| s.valid()) {
            return Ok(s.id);
        }
        let fresh = Session::open(&self.client, self.lease_ttl).await?;
        let id = fresh.id;
        *session = Some(fresh);
        Ok(id)
    }

    /// Whether `candidate` leads election `name`: it holds the election key with this
    /// session's lease, or takes the key when it is free, or when it was its own from an
    /// earlier session (a restarted server takes back its leadership at once).
    pub(crate) async fn campaign(&self, name: &str, candidate: &str) -> Result<bool, StoreError> {
        let lease = self.session_id().await?;
        let key = format!("{}lease/elected/{name}", self.namespace).into_bytes();
        let put = TxnOp::put(key.clone(), candidate, Some(PutOptions::new().with_lease(lease)));
        let take_free = Txn::new()
            .when(vec![Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then(vec![put.clone()])
            .or_else(vec![TxnOp::get(key.clone(), Some(GetOptions::new()))]);
        let response = self.send(take_free).await?;
        if response.succeeded() {
            return Ok(true);
        }
        let holder = match response.op_responses().into_iter().next() {
            Some(TxnOpResponse::Get(got)) => got.kvs().first().cloned(),
            _ => None,
        };
        let Some(holder) = holder else { return Ok(false) };
        if holder.lease() == lease {
            return Ok(true);
        }
        if holder.value() != candidate.as_bytes() {
            return Ok(false);
        }
        let take_back = Txn::new()
            .when(vec![Compare::mod_revision(key, CompareOp::Equal, holder.mod_revision())])
            .and_then(vec![put]);
        Ok(self.send(take_back).await?.succeeded())
    }
}
