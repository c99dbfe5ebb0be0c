//! The etcd backend: Berth's keys live under one prefix of an etcd cluster, revisions are
//! etcd's, and every write is one etcd `Txn` whose compares etcd evaluates, so concurrent
//! servers on one cluster never overwrite each other's changes.
//!
//! Reads come from a local [`mirror`] that one etcd watch keeps current (as a Kubernetes API
//! server's watch cache does): they are as fast as the embedded store's and never leave the
//! machine, and a write returns only once the mirror holds it. A read on one server may
//! trail a write just made on another by the watch's delay; writes are guarded by their
//! compares, which etcd checks against its latest state, so a stale read can lose a race,
//! never corrupt. When the watch breaks it resumes from the mirror's revision; when that
//! revision was compacted away the mirror lists everything again.

mod convert;
mod mirror;
mod session;

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions, KvClient, WatchOptions};
use tokio::sync::Notify;

use crate::history::Limits;
use crate::watch;
use crate::{BoxFuture, KeyRange, KeyValue, RangeResult, Store, StoreError, Txn, TxnResponse, WatchStream};
use convert::{from_etcd, namespaced_end, to_etcd_txn, txn_response};
use mirror::Mirror;

/// How to reach the cluster and where Berth's keys live in it.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Client URLs (`http://host:2379`, or `https://` with `tls`).
    pub endpoints: Vec<String>,
    /// Every key Berth writes is stored under this prefix (default `berth/`). Give each Berth
    /// deployment its own; the mirror assumes nothing else writes under it.
    pub namespace: String,
    /// etcd's user and password authentication.
    pub user: Option<(String, String)>,
    pub tls: Option<EtcdTls>,
    /// How much of the changes the mirror keeps for watches that start in the past.
    pub history: Limits,
    /// How long one etcd call may take before it counts as failed.
    pub request_timeout: Duration,
    /// The TTL of this server's etcd lease: how long after a leader dies another server takes
    /// over its elections.
    pub lease_ttl: Duration,
}

/// PEM files for TLS to etcd: the CA that signed its certificates, and a client
/// certificate and key when etcd asks for one.
#[derive(Debug, Clone)]
pub struct EtcdTls {
    pub ca: Vec<u8>,
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl EtcdOptions {
    pub fn new(endpoints: Vec<String>) -> Self {
        EtcdOptions {
            endpoints,
            namespace: "berth/".into(),
            user: None,
            tls: None,
            history: Limits { revisions: 10_000, bytes: 128 << 20 },
            request_timeout: Duration::from_secs(10),
            lease_ttl: Duration::from_secs(6),
        }
    }
}

/// The etcd store. Cheap to share behind an `Arc`.
pub struct Etcd {
    client: Client,
    kv: KvClient,
    namespace: String,
    mirror: Arc<Mirror>,
    /// Wakes the mirror's task to drop its watch and list again (tests use it).
    relist: Arc<Notify>,
    /// Wakes the mirror's task to ask etcd for a progress notification (`sync`).
    progress: Arc<Notify>,
    follower: tokio::task::JoinHandle<()>,
    /// This server's lease for elections, opened at the first campaign.
    session: tokio::sync::Mutex<Option<session::Session>>,
    lease_ttl: Duration,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// Largest message accepted from etcd (a page of a list, a watch batch).
const MAX_MESSAGE: usize = 64 << 20;
/// Keys per page when listing the namespace.
const PAGE: i64 = 5_000;
/// How long a transaction waits for the mirror to catch up with it before returning anyway.
const CATCH_UP_WAIT: Duration = Duration::from_secs(5);

/// How long `sync` waits for a progress notification before asking etcd again.
const SYNC_ASK_AGAIN: Duration = Duration::from_millis(100);

/// How many times a call that could not connect is tried.
const NOT_SENT_ATTEMPTS: usize = 20;

/// Whether the call failed before anything reached etcd: its connection was refused.
fn never_sent(e: &etcd_client::Error) -> bool {
    // etcd-client's error does not chain its causes: start from the gRPC status inside.
    let etcd_client::Error::GRpcStatus(status) = e else { return false };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(status);
    while let Some(c) = cause {
        if c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
            return true;
        }
        cause = c.source();
    }
    false
}

fn engine(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(format!("etcd: {e}"))
}

impl Etcd {
    /// Connects, lists the namespace into the mirror and starts following it.
    pub async fn connect(options: EtcdOptions) -> Result<Self, StoreError> {
        if options.endpoints.is_empty() {
            return Err(StoreError::Engine("etcd: no endpoints".into()));
        }
        if options.namespace.is_empty() {
            return Err(StoreError::Engine("etcd: the key namespace must not be empty".into()));
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(options.request_timeout)
            .with_timeout(options.request_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        if let Some((user, password)) = &options.user {
            connect = connect.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &options.tls {
            let mut config = etcd_client::TlsOptions::new().ca_certificate(etcd_client::Certificate::from_pem(&tls.ca));
            if let Some((cert, key)) = &tls.identity {
                config = config.identity(etcd_client::Identity::from_pem(cert, key));
            }
            connect = connect.with_tls(config);
        }
        let client = Client::connect(&options.endpoints, Some(connect)).await.map_err(engine)?;
        let kv = client.kv_client().max_decoding_message_size(MAX_MESSAGE);
        let namespace = options.namespace.clone();
        let (kvs, revision) = list(&kv, &namespace).await?;
        let mirror = Arc::new(Mirror::new(kvs, revision, options.history));
        let (relist, progress) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let wake = Wake { relist: relist.clone(), progress: progress.clone() };
        let follower = tokio::spawn(follow(client.clone(), kv.clone(), namespace.clone(), mirror.clone(), wake));
        let session = tokio::sync::Mutex::new(None);
        Ok(Etcd { client, kv, namespace, mirror, relist, progress, follower, session, lease_ttl: options.lease_ttl })
    }

    /// Sends a transaction. The client spreads calls over the endpoints and keeps choosing a
    /// dead member's until it reconnects: a call that could not even connect was never sent,
    /// so it goes again (to another endpoint, most likely). A call whose outcome is unknown
    /// (a timeout, a connection lost on the way) is the caller's error to handle.
    async fn send(&self, txn: etcd_client::Txn) -> Result<etcd_client::TxnResponse, StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.kv.clone().txn(txn.clone()).await {
                Err(e) if attempts < NOT_SENT_ATTEMPTS && never_sent(&e) => {
                    tokio::time::sleep(Duration::from_millis(5 * attempts as u64)).await;
                }
                Err(e) if e.to_string().contains("too many operations") => {
                    return Err(StoreError::Engine(format!(
                        "etcd refused a transaction as too big ({e}): raise etcd's --max-txn-ops (docs/production.md)"
                    )));
                }
                other => return other.map_err(engine),
            }
        }
    }

    /// Makes the mirror drop its watch and list the namespace again, as it does when its
    /// watch's revision was compacted.
    pub fn force_relist(&self) {
        self.relist.notify_one();
    }
}

/// Every key under `namespace`, paged at one revision, with that revision.
async fn list(kv: &KvClient, namespace: &str) -> Result<(Vec<KeyValue>, u64), StoreError> {
    let mut kv = kv.clone();
    let end = namespaced_end(namespace, "");
    let mut out = Vec::new();
    let mut start = namespace.as_bytes().to_vec();
    let mut revision = 0;
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if revision > 0 {
            options = options.with_revision(revision as i64);
        }
        let page = kv.get(start.clone(), Some(options)).await.map_err(engine)?;
        if revision == 0 {
            revision = page.header().map_or(0, |h| h.revision() as u64);
        }
        for item in page.kvs() {
            out.push(from_etcd(namespace, item)?);
        }
        match page.kvs().last() {
            Some(last) if page.more() => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => return Ok((out, revision)),
        }
    }
}

/// What the mirror's task is woken for, besides the watch.
struct Wake {
    relist: Arc<Notify>,
    progress: Arc<Notify>,
}

/// Keeps the mirror current: watches the namespace from the revision after the mirror's,
/// applying each revision's changes; reconnects after errors and lists again when the watch
/// start was compacted. Progress notifications (asked for by `sync`) say through which etcd
/// revision everything was delivered.
async fn follow(client: Client, kv: KvClient, namespace: String, mirror: Arc<Mirror>, wake: Wake) {
    let mut backoff = Duration::from_millis(100);
    let mut must_relist = false;
    loop {
        if must_relist {
            match list(&kv, &namespace).await {
                Ok((kvs, revision)) => {
                    tracing::info!(revision, keys = kvs.len(), "etcd store: listed the namespace again");
                    mirror.relist(kvs, revision);
                    must_relist = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "etcd store: listing failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        let from = mirror.revision() + 1;
        let options = WatchOptions::new()
            .with_range(namespaced_end(&namespace, ""))
            .with_start_revision(from as i64)
            .with_progress_notify();
        let watched =
            client.watch_client().max_decoding_message_size(MAX_MESSAGE).watch(namespace.clone(), Some(options)).await;
        let (mut watcher, mut stream) = match watched {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "etcd store: watch failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        loop {
            let message = tokio::select! {
                m = stream.message() => m,
                () = wake.relist.notified() => {
                    must_relist = true;
                    break;
                }
                () = wake.progress.notified() => {
                    // A failed request shows as the stream's own failure.
                    let _ = watcher.request_progress().await;
                    continue;
                }
            };
            let response = match message {
                Ok(Some(r)) => r,
                Ok(None) => {
                    tracing::warn!("etcd store: the watch ended; resuming");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "etcd store: the watch failed; resuming");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    break;
                }
            };
            backoff = Duration::from_millis(100);
            if response.compact_revision() > 0 {
                tracing::warn!(
                    compacted = response.compact_revision(),
                    wanted = from,
                    "etcd store: the watch's start was compacted"
                );
                must_relist = true;
                break;
            }
            if response.canceled() {
                tracing::warn!(reason = response.cancel_reason(), "etcd store: the watch was canceled; resuming");
                break;
            }
            if let Err(e) = apply(&mirror, &namespace, response.events()) {
                tracing::error!(error = %e, "etcd store: a change could not be read; listing again");
                must_relist = true;
                break;
            }
            // A progress notification: no events, and every change up to its revision sent.
            if response.events().is_empty()
                && !response.created()
                && let Some(header) = response.header()
            {
                mirror.delivered_through(header.revision() as u64);
            }
        }
    }
}

/// Applies a watch response's events, one revision at a time.
fn apply(mirror: &Mirror, namespace: &str, events: &[etcd_client::Event]) -> Result<(), StoreError> {
    let mut batch: Vec<crate::Event> = Vec::new();
    let mut batch_revision = 0;
    for e in events {
        let event = convert::event(namespace, e)?;
        if event.kv.mod_revision != batch_revision && !batch.is_empty() {
            mirror.apply(batch_revision, std::mem::take(&mut batch));
        }
        batch_revision = event.kv.mod_revision;
        batch.push(event);
    }
    if !batch.is_empty() {
        mirror.apply(batch_revision, batch);
    }
    Ok(())
}

impl Store for Etcd {
    fn revision(&self) -> Result<u64, StoreError> {
        Ok(self.mirror.revision())
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.mirror.get(key))
    }

    fn range(&self, range: &KeyRange) -> Result<RangeResult, StoreError> {
        Ok(self.mirror.range(range))
    }

    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResponse, StoreError>> {
        Box::pin(async move {
            if txn.is_read_only() {
                return Ok(self.mirror.read_only_txn(&txn.compares, &txn.success, &txn.failure));
            }
            let response = self.send(to_etcd_txn(&self.namespace, &txn)).await?;
            let (response, probed) = txn_response(&self.namespace, &txn, &response)?;
            let wrote = response.responses.iter().any(|r| match r {
                crate::OpResponse::Put { .. } => true,
                crate::OpResponse::Delete { deleted } => !deleted.is_empty(),
                crate::OpResponse::Get { .. } => false,
            });
            // After a write the mirror must show it (read your writes); after lost compares it
            // must show what beat them, so that a retry reads it.
            let current = if wrote {
                self.mirror.caught_up(response.revision, CATCH_UP_WAIT).await
            } else {
                self.mirror.reflects(&probed, CATCH_UP_WAIT).await
            };
            if !current {
                tracing::warn!(revision = response.revision, "etcd store: the mirror trails etcd");
            }
            Ok(response)
        })
    }

    fn elect<'a>(&'a self, name: &'a str, candidate: &'a str) -> BoxFuture<'a, Option<Result<bool, StoreError>>> {
        Box::pin(async move { Some(self.campaign(name, candidate).await) })
    }

    fn sync(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            // etcd's revision now, by a linearizable read: every write committed before this
            // call is at or below it.
            let options = GetOptions::new().with_count_only();
            let now = self.kv.clone().get(self.namespace.clone(), Some(options)).await.map_err(engine)?;
            let now = now.header().map_or(0, |h| h.revision() as u64);
            let deadline = tokio::time::Instant::now() + CATCH_UP_WAIT;
            // etcd answers a progress request only while the watch has nothing left to send,
            // so it is asked again until the notification covers `now`.
            while tokio::time::Instant::now() < deadline {
                self.progress.notify_one();
                if self.mirror.delivered(now, SYNC_ASK_AGAIN).await {
                    return Ok(());
                }
            }
            Err(StoreError::Engine(format!("etcd: the mirror did not reach revision {now} in {CATCH_UP_WAIT:?}")))
        })
    }

    fn watch(&self, prefix: &str, start_revision: u64) -> Result<WatchStream, StoreError> {
        let live = self.mirror.subscribe();
        let mirror = self.mirror.clone();
        let prefix_owned = prefix.to_string();
        let reload = move |from: u64| mirror.history(from, &prefix_owned);
        watch::open(prefix, start_revision, live, || Ok(self.mirror.revision()), Box::new(reload))
    }
}
