//! The store conformance suite: every backend must pass the same behaviour, checked here
//! against the embedded store and against a real etcd (Debian's `etcd-server`, started once
//! for this test binary on loopback ports; each test gets its own key namespace in it).
//!
//! Revisions are asserted relative to each other, never as absolute numbers: etcd's revision
//! is shared by every namespace in it.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use berth_store::{
    CmpOp, Compare, Embedded, EmbeddedOptions, Etcd, EtcdOptions, Event, EventKind, HistoryLimits, KeyRange, Op,
    OpResponse, Store, StoreError, StoreExt, Txn, WatchStream,
};

type Shared = Arc<dyn Store>;

// ---- backends ----------------------------------------------------------------------------

/// Two handles onto one store, as two servers would hold them (the same one when embedded).
struct Pair {
    a: Shared,
    b: Shared,
    _dir: Option<tempfile::TempDir>,
}

/// A history of `revisions` revisions (and bytes enough for any test's).
fn history(revisions: usize) -> HistoryLimits {
    HistoryLimits { revisions, bytes: 64 << 20 }
}

fn embedded(revisions: usize) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions { history: history(revisions), ..Default::default() };
    let store: Shared = Arc::new(Embedded::open(&dir.path().join("db"), options).unwrap());
    Pair { a: store.clone(), b: store, _dir: Some(dir) }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The client URL of the etcd this test binary started (once, for all its tests).
fn etcd_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        let binary = ["/usr/bin/etcd", "/usr/local/bin/etcd"].into_iter().map(PathBuf::from).find(|p| p.exists());
        let binary = binary.expect(
            "etcd is not installed: the etcd conformance tests need Debian's etcd-server (scripts/test installs it)",
        );
        let (client, peer) = (free_port(), free_port());
        let dir = tempfile::tempdir().unwrap().keep();
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let args = [
            "--name=conformance".to_string(),
            format!("--data-dir={}", dir.display()),
            format!("--listen-client-urls={endpoint}"),
            format!("--advertise-client-urls={endpoint}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=conformance={peer_url}"),
            "--max-txn-ops=10000".to_string(),
            "--max-request-bytes=16777216".to_string(),
            "--logger=zap".to_string(),
            "--log-level=warn".to_string(),
        ];
        // The child is tied to a thread that lives as long as this process: etcd gets SIGKILL
        // when it ends (PDEATHSIG follows the spawning thread, not the process).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut command = Command::new(binary);
            let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
            command.args(args).stdout(std::process::Stdio::null()).stderr(log);
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = command.spawn();
            tx.send(child.map(|c| c.id())).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap().expect("starting etcd");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not start listening on {endpoint}");
            std::thread::sleep(Duration::from_millis(50));
        }
        endpoint
    })
}

fn etcd_options(revisions: usize) -> EtcdOptions {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut options = EtcdOptions::new(vec![etcd_endpoint().to_string()]);
    options.namespace = format!("conformance-{}-{}/", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    options.history = history(revisions);
    options
}

async fn etcd(revisions: usize) -> Pair {
    let options = etcd_options(revisions);
    let a: Shared = Arc::new(Etcd::connect(options.clone()).await.unwrap());
    let b: Shared = Arc::new(Etcd::connect(options).await.unwrap());
    Pair { a, b, _dir: None }
}

/// Runs each named check against both backends.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod on_embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(super::embedded(100_000)).await
                }
            )*
        }
        mod on_etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check(super::etcd(10_000).await).await
                }
            )*
        }
    };
}

conformance!(
    puts_track_revisions_and_versions,
    compare_and_swap_guards_writes,
    prefix_compares_see_newer_writes_under_the_prefix,
    one_transaction_is_one_revision,
    ranges_are_ordered_limited_and_pageable,
    deletes_report_what_they_removed_and_recreation_starts_over,
    concurrent_compare_and_swap_is_linearizable,
    watches_deliver_changes_in_order_and_resume_from_a_revision,
    watches_hand_out_a_revision_whole,
    big_values_round_trip,
    a_sync_shows_what_the_other_server_wrote,
);

// ---- checks ------------------------------------------------------------------------------

/// Right after a sync, every write the other server finished before it is readable here:
/// no polling, however far the mirror trailed.
async fn a_sync_shows_what_the_other_server_wrote(p: Pair) {
    for i in 0..50 {
        let key = format!("synced/{i}");
        let revision = p.b.put(&key, vec![i as u8]).await.unwrap();
        p.a.sync().await.unwrap();
        let kv = p.a.get(&key).unwrap().unwrap_or_else(|| panic!("{key} is missing after a sync"));
        assert_eq!(kv.mod_revision, revision);
        assert!(p.a.revision().unwrap() >= revision);
    }
}

async fn puts_track_revisions_and_versions(p: Pair) {
    let s = &p.a;
    let r0 = s.revision().unwrap();
    let r1 = s.put("a", b"1".to_vec()).await.unwrap();
    let r2 = s.put("b", b"2".to_vec()).await.unwrap();
    let r3 = s.put("a", b"3".to_vec()).await.unwrap();
    assert!(r0 < r1 && r1 < r2 && r2 < r3, "{r0} {r1} {r2} {r3}");
    let a = s.get("a").unwrap().unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version, a.value), (r1, r3, 2, b"3".to_vec()));
    assert!(s.get("zz").unwrap().is_none());
    assert!(s.revision().unwrap() >= r3, "a server reads its own writes");
}

async fn compare_and_swap_guards_writes(p: Pair) {
    let s = &p.a;
    let create = |v: &[u8]| Txn::new().when(vec![Compare::absent("k")]).and_then(vec![Op::put("k", v.to_vec())]);
    let first = s.txn(create(b"first")).await.unwrap();
    assert!(first.succeeded);
    let lost = s.txn(create(b"second")).await.unwrap();
    assert!(!lost.succeeded);
    assert!(lost.responses.is_empty(), "a failed branch without operations answers nothing");
    assert_eq!(s.get("k").unwrap().unwrap().value, b"first");
    let swap = Txn::new()
        .when(vec![
            Compare::unchanged("k", first.revision),
            Compare::Value("k".into(), CmpOp::Equal, b"first".to_vec()),
        ])
        .and_then(vec![Op::put("k", b"third".to_vec())])
        .or_else(vec![Op::get("k")]);
    let swapped = s.txn(swap.clone()).await.unwrap();
    assert!(swapped.succeeded);
    match &swapped.responses[..] {
        [OpResponse::Put { prev: Some(prev) }] => assert_eq!(prev.value, b"first"),
        other => panic!("{other:?}"),
    }
    let stale = s.txn(swap).await.unwrap();
    assert!(!stale.succeeded);
    match &stale.responses[..] {
        [OpResponse::Get { kvs }] => assert_eq!(kvs[0].value, b"third"),
        other => panic!("{other:?}"),
    }
    // A value compare on a missing key fails whatever the operator.
    let missing = Txn::new().when(vec![Compare::Value("nope".into(), CmpOp::NotEqual, b"x".to_vec())]);
    assert!(!s.txn(missing.and_then(vec![Op::put("y", vec![])])).await.unwrap().succeeded);
    assert!(s.get("y").unwrap().is_none());
}

async fn prefix_compares_see_newer_writes_under_the_prefix(p: Pair) {
    let s = &p.a;
    s.put("t/a", vec![]).await.unwrap();
    let seen = s.revision().unwrap();
    let guarded =
        || Txn::new().when(vec![Compare::prefix_unchanged_since("t/", seen)]).and_then(vec![Op::put("done", vec![])]);
    assert!(s.txn(guarded()).await.unwrap().succeeded);
    s.put("t/b", vec![]).await.unwrap();
    assert!(!s.txn(guarded()).await.unwrap().succeeded);
    // "t/" itself is not under "t/b": a sibling prefix is a different range.
    let sibling =
        Txn::new().when(vec![Compare::prefix_unchanged_since("t/a", seen)]).and_then(vec![Op::put("x", vec![])]);
    assert!(s.txn(sibling).await.unwrap().succeeded);
    // No keys under a prefix compare as one key with mod revision 0.
    let empty = |op| {
        Txn::new().when(vec![Compare::PrefixModRevision("empty/".into(), op, 0)]).and_then(vec![Op::put("e", vec![])])
    };
    assert!(s.txn(empty(CmpOp::Equal)).await.unwrap().succeeded);
    assert!(!s.txn(empty(CmpOp::Greater)).await.unwrap().succeeded);
}

async fn one_transaction_is_one_revision(p: Pair) {
    let s = &p.a;
    let r =
        s.txn(Txn::new().and_then(vec![Op::put("x/1", b"a".to_vec()), Op::put("x/2", b"b".to_vec())])).await.unwrap();
    let all = s.list("x/").unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|kv| kv.mod_revision == r.revision));
    let del = s.txn(Txn::new().and_then(vec![Op::delete_prefix("x/")])).await.unwrap();
    assert!(del.revision > r.revision);
    assert!(s.list("x/").unwrap().is_empty());
    // A transaction that changes nothing is no change: watchers see the next real one first.
    let mut w = s.watch("x/", 0).unwrap();
    let none = s.txn(Txn::new().and_then(vec![Op::delete("x/1")])).await.unwrap();
    assert_eq!(none.responses, vec![OpResponse::Delete { deleted: vec![] }]);
    let marker = s.put("x/marker", vec![]).await.unwrap();
    let e = next_event(&mut w).await;
    assert_eq!((e.kind, e.kv.key.as_str(), e.kv.mod_revision), (EventKind::Put, "x/marker", marker));
}

async fn ranges_are_ordered_limited_and_pageable(p: Pair) {
    let s = &p.a;
    for k in ["p/c", "p/a", "p/b", "q/a", "p"] {
        s.put(k, k.as_bytes().to_vec()).await.unwrap();
    }
    let keys = |kvs: Vec<berth_store::KeyValue>| kvs.into_iter().map(|kv| kv.key).collect::<Vec<_>>();
    assert_eq!(keys(s.range(&KeyRange::prefix("p/")).unwrap().kvs), ["p/a", "p/b", "p/c"]);
    let page = s.range(&KeyRange::prefix("p/").with_limit(2)).unwrap();
    assert!(page.more);
    assert_eq!(keys(page.kvs), ["p/a", "p/b"]);
    let rest = s.range(&KeyRange::prefix_after("p/", "p/b", 10)).unwrap();
    assert!(!rest.more);
    assert_eq!(keys(rest.kvs), ["p/c"]);
    assert_eq!(keys(s.list("").unwrap()), ["p", "p/a", "p/b", "p/c", "q/a"]);
    // Reads inside a transaction that also writes see the same order and limit.
    let r = s
        .txn(Txn::new().and_then(vec![Op::put("z", vec![]), Op::Get { range: KeyRange::prefix("p/").with_limit(1) }]))
        .await
        .unwrap();
    match &r.responses[..] {
        [OpResponse::Put { prev: None }, OpResponse::Get { kvs }] => assert_eq!(keys(kvs.clone()), ["p/a"]),
        other => panic!("{other:?}"),
    }
}

async fn deletes_report_what_they_removed_and_recreation_starts_over(p: Pair) {
    let s = &p.a;
    let created = s.put("d/a", b"1".to_vec()).await.unwrap();
    s.put("d/a", b"2".to_vec()).await.unwrap();
    s.put("d/b", b"3".to_vec()).await.unwrap();
    let r = s.txn(Txn::new().and_then(vec![Op::delete_prefix("d/")])).await.unwrap();
    match &r.responses[..] {
        [OpResponse::Delete { deleted }] => {
            let found: Vec<_> = deleted.iter().map(|kv| (kv.key.as_str(), kv.value.as_slice(), kv.version)).collect();
            assert_eq!(found, [("d/a", b"2".as_slice(), 2), ("d/b", b"3".as_slice(), 1)]);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.get("d/a").unwrap().is_none());
    let again = s.put("d/a", b"4".to_vec()).await.unwrap();
    let kv = s.get("d/a").unwrap().unwrap();
    assert!(again > created);
    assert_eq!((kv.create_revision, kv.version), (again, 1));
}

/// Workers on both handles increment one counter by read, compute, compare-and-swap. Every
/// increment must see the value the previous one wrote: the old values seen are exactly
/// 0..N, each once, and the counter ends at N.
async fn concurrent_compare_and_swap_is_linearizable(p: Pair) {
    const WORKERS: usize = 8;
    const EACH: usize = 25;
    p.a.put("counter", b"0".to_vec()).await.unwrap();
    // The other handle (another server, on etcd) sees the counter once its watch brings it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.b.get("counter").unwrap().is_none() {
        assert!(Instant::now() < deadline, "the counter never reached the other handle");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut handles = Vec::new();
    for w in 0..WORKERS {
        let s = if w % 2 == 0 { p.a.clone() } else { p.b.clone() };
        handles.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut revisions = Vec::new();
            for _ in 0..EACH {
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    assert!(attempts < 1_000, "an increment never won");
                    let current = s.get("counter").unwrap().expect("the counter exists");
                    let n: usize = String::from_utf8(current.value.clone()).unwrap().parse().unwrap();
                    let txn = Txn::new()
                        .when(vec![Compare::unchanged("counter", current.mod_revision)])
                        .and_then(vec![Op::put("counter", (n + 1).to_string().into_bytes())]);
                    let r = s.txn(txn).await.unwrap();
                    if r.succeeded {
                        let OpResponse::Put { prev: Some(prev) } = &r.responses[0] else { panic!("{r:?}") };
                        assert_eq!(prev.value, current.value, "the swap replaced exactly what was read");
                        seen.push(n);
                        revisions.push(r.revision);
                        break;
                    }
                }
            }
            (seen, revisions)
        }));
    }
    let (mut seen, mut revisions) = (Vec::new(), BTreeSet::new());
    for h in handles {
        let (s, r) = h.await.unwrap();
        seen.extend(s);
        revisions.extend(r);
    }
    seen.sort();
    assert_eq!(seen, (0..WORKERS * EACH).collect::<Vec<_>>());
    assert_eq!(revisions.len(), WORKERS * EACH, "every increment has its own revision");
    let deadline = Instant::now() + Duration::from_secs(10);
    for s in [&p.a, &p.b] {
        while s.get("counter").unwrap().unwrap().value != (WORKERS * EACH).to_string().into_bytes() {
            assert!(Instant::now() < deadline, "a handle never saw the final count");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn next_event(w: &mut WatchStream) -> Event {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("a watch event within 10 s")
        .expect("the watch is open")
        .expect("no watch error")
}

/// The next `n` changes a watch delivers, as (kind, key, revision).
async fn read(w: &mut WatchStream, n: usize) -> Vec<(EventKind, String, u64)> {
    let mut got = Vec::new();
    for _ in 0..n {
        let e = next_event(w).await;
        got.push((e.kind, e.kv.key, e.kv.mod_revision));
    }
    got
}

async fn watches_deliver_changes_in_order_and_resume_from_a_revision(p: Pair) {
    let s = &p.a;
    let start = s.revision().unwrap() + 1;
    let mut live = s.watch("w/", 0).unwrap();
    let mut expected = Vec::new();
    let mut existing = BTreeSet::new();
    for i in 0..30u8 {
        let key = format!("w/{}", i % 7);
        if i % 5 == 4 {
            let r = s.txn(Txn::new().and_then(vec![Op::delete(&key)])).await.unwrap().revision;
            // A delete of a key that does not exist changes nothing and is no event.
            if existing.remove(&key) {
                expected.push((EventKind::Delete, key, r));
            }
        } else {
            let r = s.put(&key, vec![i]).await.unwrap();
            existing.insert(key.clone());
            expected.push((EventKind::Put, key, r));
        }
        s.put("elsewhere", vec![i]).await.unwrap();
    }
    assert_eq!(read(&mut live, expected.len()).await, expected, "the live watch");
    let mut replay = s.watch("w/", start).unwrap();
    assert_eq!(read(&mut replay, expected.len()).await, expected, "a watch from the first revision");
    let middle = expected[expected.len() / 2].2;
    let mut resumed = s.watch("w/", middle).unwrap();
    let suffix: Vec<_> = expected.iter().filter(|(_, _, r)| *r >= middle).cloned().collect();
    assert_eq!(read(&mut resumed, suffix.len()).await, suffix, "a watch resumed mid-way");
    // And all three follow what comes next.
    let r = s.put("w/next", b"n".to_vec()).await.unwrap();
    for w in [&mut live, &mut replay, &mut resumed] {
        assert_eq!(read(w, 1).await, [(EventKind::Put, "w/next".to_string(), r)]);
    }
}

async fn next_revision(w: &mut WatchStream) -> Vec<(EventKind, String, u64)> {
    let batch = tokio::time::timeout(Duration::from_secs(10), w.next_revision())
        .await
        .expect("a revision within 10 s")
        .expect("the watch is open")
        .expect("no watch error");
    assert!(batch.1.iter().all(|e| e.kv.mod_revision == batch.0), "a batch is one revision");
    batch.1.into_iter().map(|e| (e.kind, e.kv.key, e.kv.mod_revision)).collect()
}

async fn watches_hand_out_a_revision_whole(p: Pair) {
    let s = &p.a;
    s.put("v/old", b"o".to_vec()).await.unwrap();
    let start = s.revision().unwrap() + 1;
    let mut live = s.watch("", 0).unwrap();
    let many: Vec<Op> = (0..40).map(|i| Op::put(&format!("v/{i:02}"), vec![i])).collect();
    let first = s.txn(Txn::new().and_then(many)).await.unwrap().revision;
    let second =
        s.txn(Txn::new().and_then(vec![Op::delete("v/old"), Op::put("v/new", vec![])])).await.unwrap().revision;
    let expect_first: Vec<_> = (0..40).map(|i| (EventKind::Put, format!("v/{i:02}"), first)).collect();
    let expect_second =
        vec![(EventKind::Delete, "v/old".to_string(), second), (EventKind::Put, "v/new".to_string(), second)];
    assert_eq!(next_revision(&mut live).await, expect_first, "a 40-key transaction as one batch");
    assert_eq!(next_revision(&mut live).await, expect_second);
    // A watcher that took one event of a revision gets the rest of it next.
    let mut replay = s.watch("v/", start).unwrap();
    assert_eq!(read(&mut replay, 1).await, expect_first[..1]);
    assert_eq!(next_revision(&mut replay).await, expect_first[1..]);
    assert_eq!(next_revision(&mut replay).await, expect_second);
}

async fn big_values_round_trip(p: Pair) {
    let s = &p.a;
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = s.watch("big/", 0).unwrap();
    s.put("big/1", big.clone()).await.unwrap();
    assert_eq!(s.get("big/1").unwrap().unwrap().value, big);
    assert_eq!(next_event(&mut w).await.kv.value, big);
}

// ---- history limits ----------------------------------------------------------------------

async fn a_watch_from_before_the_retained_history_is_refused(p: Pair) {
    let s = &p.a;
    let mut revisions = Vec::new();
    for i in 0..10 {
        revisions.push(s.put("k", vec![i]).await.unwrap());
    }
    assert!(matches!(s.watch("", revisions[0]), Err(StoreError::Compacted { .. })));
    let mut w = s.watch("", revisions[8]).unwrap();
    assert_eq!(next_event(&mut w).await.kv.value, vec![8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_keeps_the_history_it_was_told_to() {
    a_watch_from_before_the_retained_history_is_refused(embedded(3)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_mirror_keeps_the_history_it_was_told_to() {
    a_watch_from_before_the_retained_history_is_refused(etcd(3).await).await
}

// ---- etcd only ---------------------------------------------------------------------------

/// What the mirror does when its watch's revision was compacted: list again, hand open
/// watches the difference, and go on following.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_mirror_lists_again_and_watches_see_the_difference() {
    let options = etcd_options(10_000);
    let s = Etcd::connect(options.clone()).await.unwrap();
    let other = Etcd::connect(options).await.unwrap();
    s.put("r/keep", b"1".to_vec()).await.unwrap();
    s.put("r/gone", b"1".to_vec()).await.unwrap();
    let mut w = s.watch("r/", 0).unwrap();
    s.force_relist();
    // Changes made through another server while (or before) the mirror lists again.
    other.txn(Txn::new().and_then(vec![Op::delete("r/gone")])).await.unwrap();
    let made = other.put("r/new", b"2".to_vec()).await.unwrap();
    let mut got = BTreeSet::new();
    while got.len() < 2 {
        let e = next_event(&mut w).await;
        got.insert((e.kind == EventKind::Put, e.kv.key));
    }
    assert_eq!(got, BTreeSet::from([(false, "r/gone".to_string()), (true, "r/new".to_string())]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.revision().unwrap() < made {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let keys: Vec<_> = s.list("r/").unwrap().into_iter().map(|kv| kv.key).collect();
    assert_eq!(keys, ["r/keep", "r/new"]);
    let r = s.put("r/after", vec![]).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv.mod_revision, r, "the watch goes on after the list");
}

/// Keys written by another server become visible without any write of our own, and a
/// compare-and-swap made with a stale read loses, then wins once the mirror caught up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_servers_see_each_others_writes() {
    let p = etcd(10_000).await;
    let r = p.b.put("shared", b"from b".to_vec()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.a.get("shared").unwrap().is_none() {
        assert!(Instant::now() < deadline, "server a never saw b's write");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stale = Txn::new().when(vec![Compare::unchanged("shared", r - 1)]).and_then(vec![Op::put("shared", vec![])]);
    assert!(!p.a.txn(stale).await.unwrap().succeeded);
    p.b.put("shared", b"again".to_vec()).await.unwrap();
    let stale = Txn::new().when(vec![Compare::unchanged("shared", r)]).and_then(vec![Op::put("shared", b"a".to_vec())]);
    assert!(!p.a.txn(stale).await.unwrap().succeeded);
    // After losing, the mirror already holds what won: a retry from a fresh read succeeds.
    let now = p.a.get("shared").unwrap().unwrap();
    assert_eq!(now.value, b"again");
    let fresh = Txn::new()
        .when(vec![Compare::unchanged("shared", now.mod_revision)])
        .and_then(vec![Op::put("shared", b"a".to_vec())]);
    assert!(p.a.txn(fresh).await.unwrap().succeeded);
}

/// etcd's revision also counts writes outside Berth's namespace, which the mirror never sees
/// as changes; a sync after them still completes (it fails when its progress notification
/// never comes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_sync_passes_writes_outside_the_namespace() {
    let p = etcd(10_000).await;
    let elsewhere = Etcd::connect(etcd_options(10)).await.unwrap();
    p.a.put("mine", vec![1]).await.unwrap();
    for i in 0..5 {
        elsewhere.put("theirs", vec![i]).await.unwrap();
    }
    p.a.sync().await.unwrap();
    let revision = p.b.put("mine", vec![2]).await.unwrap();
    p.a.sync().await.unwrap();
    assert_eq!(p.a.get("mine").unwrap().unwrap().mod_revision, revision);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_refuses_bad_options_and_unreachable_clusters() {
    let mut options = etcd_options(10);
    options.namespace.clear();
    assert!(matches!(Etcd::connect(options).await, Err(StoreError::Engine(m)) if m.contains("namespace")));
    assert!(
        matches!(Etcd::connect(EtcdOptions::new(vec![])).await, Err(StoreError::Engine(m)) if m.contains("no endpoints"))
    );
    let mut options = EtcdOptions::new(vec![format!("http://127.0.0.1:{}", free_port())]);
    options.request_timeout = Duration::from_millis(500);
    let started = Instant::now();
    assert!(matches!(Etcd::connect(options).await, Err(StoreError::Engine(_))));
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// One leader per election; it stays leader while its server lives, another server takes
/// over within the lease TTL once it is gone, and a server coming back under the same name
/// takes back what it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_elections_have_one_leader_and_fail_over_within_the_lease() {
    let mut options = etcd_options(10);
    options.lease_ttl = Duration::from_secs(2);
    let a = Etcd::connect(options.clone()).await.unwrap();
    let b = Etcd::connect(options.clone()).await.unwrap();
    assert!(a.elect("x", "a").await.unwrap().unwrap());
    assert!(!b.elect("x", "b").await.unwrap().unwrap());
    assert!(b.elect("other", "b").await.unwrap().unwrap(), "elections are independent");
    // Well past the TTL: a keeps its lease alive, so it stays the only leader.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.elect("x", "a").await.unwrap().unwrap());
    assert!(!b.elect("x", "b").await.unwrap().unwrap());
    drop(a);
    let gone = Instant::now();
    while !b.elect("x", "b").await.unwrap().unwrap() {
        assert!(gone.elapsed() < Duration::from_secs(5), "no takeover within the 2 s lease (+ margin)");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // b's server restarts under the same name: its new session takes the election back.
    drop(b);
    let b_again = Etcd::connect(options).await.unwrap();
    assert!(b_again.elect("x", "b").await.unwrap().unwrap());
    // The embedded store has no election of its own.
    assert!(embedded(10).a.elect("x", "a").await.is_none());
}
