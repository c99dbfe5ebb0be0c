use std::fs::OpenOptions;
use std::io::Write;

use proptest::prelude::*;

use super::*;
use crate::pattern::Pattern;

fn ev(ts: i64, m: &str) -> Event {
    Event { timestamp: ts, ingestion_time: ts + 1, message: m.to_string() }
}

fn messages(page: &Page) -> Vec<String> {
    page.iter().map(|(_, e)| e.message.clone()).collect()
}

/// Every event of a stream, read forward a page of `limit` at a time.
fn all_forward(g: &GroupLog, stream: &str, limit: usize) -> Page {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = g.page(stream, Direction::Forward, cursor, Window::ALL, limit).unwrap();
        let Some((last, _)) = page.last() else { return out };
        cursor = Some(last.next());
        out.extend(page);
    }
}

fn all_backward(g: &GroupLog, stream: &str, limit: usize) -> Page {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = g.page(stream, Direction::Backward, cursor, Window::ALL, limit).unwrap();
        let Some((first, _)) = page.first() else {
            out.reverse();
            return out;
        };
        cursor = Some(*first);
        out.extend(page.into_iter().rev());
    }
}

#[test]
fn a_stream_reads_back_in_timestamp_order_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let g = GroupLog::open(dir.path()).unwrap();
    g.append("a", vec![ev(10, "a10"), ev(30, "a30")]).unwrap();
    g.append("b", vec![ev(5, "b5")]).unwrap();
    g.append("a", vec![ev(20, "a20"), ev(5, "a5")]).unwrap();
    let page = g.page("a", Direction::Forward, None, Window::ALL, 10).unwrap();
    assert_eq!(messages(&page), ["a5", "a10", "a20", "a30"]);
    let last2 = g.page("a", Direction::Backward, None, Window::ALL, 2).unwrap();
    assert_eq!(messages(&last2), ["a20", "a30"]);
    let window = Window { start: Some(10), end: Some(30) };
    assert_eq!(messages(&g.page("a", Direction::Forward, None, window, 10).unwrap()), ["a10", "a20"]);
    let s = g.summary("a").unwrap();
    assert_eq!(
        (s.first_timestamp, s.last_timestamp, s.last_ingestion_time, s.events),
        (Some(5), Some(30), Some(31), 4)
    );
    assert!(g.summary("c").is_none());
}

#[test]
fn events_survive_reopening_and_a_torn_tail_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    {
        let g = GroupLog::open(dir.path()).unwrap();
        g.append("s", vec![ev(1, "one"), ev(2, "two")]).unwrap();
        g.append("s", vec![ev(3, "three")]).unwrap();
    }
    // A crash in the middle of the next append: half a record at the end.
    let path = segment_path(dir.path(), 1);
    let whole = format::batch(99, "s", &[ev(4, "four")]).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new().append(true).open(&path).unwrap().write_all(&whole[..whole.len() / 2]).unwrap();
    let g = GroupLog::open(dir.path()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), before);
    assert_eq!(messages(&all_forward(&g, "s", 10)), ["one", "two", "three"]);
    // Appends go on after the cut and are read back after another reopening.
    g.append("s", vec![ev(4, "four")]).unwrap();
    drop(g);
    let g = GroupLog::open(dir.path()).unwrap();
    assert_eq!(messages(&all_forward(&g, "s", 10)), ["one", "two", "three", "four"]);
}

#[test]
fn a_flipped_bit_is_a_torn_record_in_the_newest_segment_and_damage_in_older_ones() {
    let dir = tempfile::tempdir().unwrap();
    {
        let g = GroupLog::open_with(dir.path(), 64).unwrap();
        for i in 0..3 {
            g.append("s", vec![ev(i, &"x".repeat(60))]).unwrap();
        }
    }
    let flip = |id: u64| {
        let path = segment_path(dir.path(), id);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
    };
    flip(3);
    let g = GroupLog::open_with(dir.path(), 64).unwrap();
    assert_eq!(all_forward(&g, "s", 10).len(), 2);
    drop(g);
    flip(1);
    assert!(matches!(GroupLog::open_with(dir.path(), 64), Err(LogError::Damaged { .. })));
}

#[test]
fn a_deleted_stream_starts_empty_when_made_again_even_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let g = GroupLog::open(dir.path()).unwrap();
    g.append("s", vec![ev(1, "old")]).unwrap();
    g.append("t", vec![ev(1, "other")]).unwrap();
    g.delete_stream("s").unwrap();
    assert!(g.summary("s").is_none());
    g.append("s", vec![ev(2, "new")]).unwrap();
    let scan = g.scan(None, &|_| true, Window::ALL, &Pattern::All, Limits::events(100)).unwrap();
    assert_eq!(scan.events.iter().map(|(_, _, e)| e.message.as_str()).collect::<Vec<_>>(), ["other", "new"]);
    drop(g);
    let g = GroupLog::open(dir.path()).unwrap();
    assert_eq!(messages(&all_forward(&g, "s", 10)), ["new"]);
    assert_eq!(messages(&all_forward(&g, "t", 10)), ["other"]);
}

#[test]
fn segments_roll_and_retention_drops_the_oldest_expired_ones() {
    let dir = tempfile::tempdir().unwrap();
    let g = GroupLog::open_with(dir.path(), 200).unwrap();
    for ts in [100, 200, 300, 50, 400] {
        g.append("s", vec![ev(ts, &"m".repeat(150))]).unwrap();
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 5);
    // Segment 4 (ts 50) expired, but segment 3 (ts 300) before it has not: only 1 and 2 go.
    assert_eq!(g.expire_before(250).unwrap(), 2);
    assert_eq!(all_forward(&g, "s", 10).iter().map(|(k, _)| k.timestamp).collect::<Vec<_>>(), [50, 300, 400]);
    // While the newest segment holds a live event, it stays.
    assert_eq!(g.expire_before(400).unwrap(), 2);
    assert_eq!(all_forward(&g, "s", 10).len(), 1);
    // Once everything expired, it goes too, and appends go on in a new one.
    assert_eq!(g.expire_before(i64::MAX).unwrap(), 1);
    assert!(all_forward(&g, "s", 10).is_empty());
    g.append("s", vec![ev(500, "after")]).unwrap();
    drop(g);
    let g = GroupLog::open_with(dir.path(), 200).unwrap();
    assert_eq!(messages(&all_forward(&g, "s", 10)), ["after"]);
}

#[test]
fn scans_filter_and_page_through_every_match_once() {
    let dir = tempfile::tempdir().unwrap();
    let g = GroupLog::open_with(dir.path(), 300).unwrap();
    for i in 0..40 {
        let stream = if i % 3 == 0 { "web" } else { "db" };
        let level = if i % 4 == 0 { "ERROR" } else { "INFO" };
        g.append(stream, vec![ev(i, &format!("{level} {i}")), ev(i, &format!("INFO again {i}"))]).unwrap();
    }
    let pattern = Pattern::parse("ERROR").unwrap();
    let web = |s: &str| s == "web";
    let mut seen = Vec::new();
    let mut from = None;
    loop {
        let page = g
            .scan(
                from,
                &web,
                Window { start: Some(4), end: None },
                &pattern,
                Limits { events: 2, bytes: usize::MAX, budget: 500 },
            )
            .unwrap();
        seen.extend(page.events.iter().map(|(s, _, e)| (s.clone(), e.message.clone())));
        match page.next {
            Some(n) => from = Some(n),
            None => break,
        }
    }
    let expected: Vec<(String, String)> =
        (4..40).filter(|i| i % 3 == 0 && i % 4 == 0).map(|i| ("web".into(), format!("ERROR {i}"))).collect();
    assert_eq!(seen, expected);
}

#[test]
fn a_scan_stops_inside_a_batch_and_goes_on_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let g = GroupLog::open(dir.path()).unwrap();
    g.append("s", (0..5).map(|i| ev(i, &i.to_string())).collect()).unwrap();
    let first = g.scan(None, &|_| true, Window::ALL, &Pattern::All, Limits::events(3)).unwrap();
    assert_eq!(first.events.len(), 3);
    let rest = g.scan(first.next, &|_| true, Window::ALL, &Pattern::All, Limits::events(3)).unwrap();
    assert_eq!(rest.events.iter().map(|(_, _, e)| e.message.as_str()).collect::<Vec<_>>(), ["3", "4"]);
    assert!(rest.next.is_none());
}

#[test]
fn the_store_keeps_groups_apart_and_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::new(dir.path().to_path_buf());
    store.group("g1").unwrap().append("s", vec![ev(1, "one")]).unwrap();
    store.group("g2").unwrap().append("s", vec![ev(1, "two")]).unwrap();
    let mut ids = store.stored_groups().unwrap();
    ids.sort();
    assert_eq!(ids, ["g1", "g2"]);
    store.remove_group("g1").unwrap();
    assert_eq!(store.stored_groups().unwrap(), ["g2"]);
    assert!(store.group("g1").unwrap().summary("s").is_none());
    assert_eq!(messages(&all_forward(&store.group("g2").unwrap(), "s", 5)), ["two"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Paging forward or backward with any page size yields every event of the stream once,
    /// in (timestamp, arrival) order, whatever the order batches arrived in.
    #[test]
    fn pages_cover_the_stream_in_order(
        batches in proptest::collection::vec(proptest::collection::vec(0i64..50, 1..6), 1..12),
        limit in 1usize..7,
        segment_bytes in 100u64..2000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let g = GroupLog::open_with(dir.path(), segment_bytes).unwrap();
        let mut expected = Vec::new();
        for (b, stamps) in batches.iter().enumerate() {
            let events: Vec<Event> = stamps.iter().enumerate().map(|(i, &ts)| ev(ts, &format!("{b}.{i}"))).collect();
            g.append("s", events.clone()).unwrap();
            g.append("noise", vec![ev(25, "noise")]).unwrap();
            let mut sorted = events;
            sorted.sort_by_key(|e| e.timestamp);
            expected.extend(sorted.into_iter().map(|e| (e.timestamp, b, e.message)));
        }
        expected.sort_by_key(|&(ts, b, _)| (ts, b));
        let expected: Vec<String> = expected.into_iter().map(|(_, _, m)| m).collect();
        prop_assert_eq!(messages(&all_forward(&g, "s", limit)), expected.clone());
        prop_assert_eq!(messages(&all_backward(&g, "s", limit)), expected.clone());
        drop(g);
        let g = GroupLog::open_with(dir.path(), segment_bytes).unwrap();
        prop_assert_eq!(messages(&all_forward(&g, "s", limit)), expected);
    }
}
