use super::*;

const T0: i64 = 1_800_000_000_000;

fn run(query: &str, events: &[(i64, &str, &str)]) -> Vec<ResultRow> {
    let q = Query::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let mut x = q.start(MAX_ROWS);
    for (i, (ts, message, stream)) in events.iter().enumerate() {
        x.feed(&Record {
            timestamp: *ts,
            ingestion_time: *ts + 5,
            message,
            stream,
            log: "000000000000:g",
            ptr: format!("p{i}"),
        });
    }
    x.finish()
}

fn field<'r>(row: &'r ResultRow, name: &str) -> Option<&'r str> {
    row.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn column(rows: &[ResultRow], name: &str) -> Vec<String> {
    rows.iter().map(|r| field(r, name).unwrap_or("-").to_string()).collect()
}

fn events() -> Vec<(i64, &'static str, &'static str)> {
    vec![
        (T0, r#"{"level":"error","latency":250,"user":{"id":"ann"}}"#, "web-1"),
        (T0 + 60_000, r#"{"level":"info","latency":20,"user":{"id":"bob"}}"#, "web-2"),
        (T0 + 120_000, r#"{"level":"error","latency":50,"user":{"id":"ann"}}"#, "web-1"),
        (T0 + 400_000, "GET /index.html 200 12ms", "nginx"),
        (T0 + 410_000, "GET /missing 404 3ms", "nginx"),
    ]
}

#[test]
fn without_commands_for_output_the_newest_events_come_first_with_time_and_message() {
    let rows = run("filter @logStream = 'web-1'", &events());
    assert_eq!(rows.len(), 2);
    assert_eq!(field(&rows[0], "@timestamp"), Some("2027-01-15 08:02:00.000"));
    assert!(field(&rows[0], "@message").unwrap().contains("\"latency\":50"));
    assert_eq!(field(&rows[0], "@ptr"), Some("p2"));
}

#[test]
fn fields_filter_and_json_members() {
    let rows = run(
        "fields @timestamp, level, user.id as who, latency * 2 as double | filter level = 'error' and latency > 100",
        &events(),
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(field(&rows[0], "who"), Some("ann"));
    assert_eq!(field(&rows[0], "double"), Some("500"));
    assert_eq!(
        rows[0].iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["@timestamp", "level", "who", "double", "@ptr"]
    );
}

#[test]
fn like_in_not_and_functions() {
    let e = events();
    assert_eq!(run("filter @message like /404/", &e).len(), 1);
    assert_eq!(run("filter @message like 'index'", &e).len(), 1);
    assert_eq!(run("filter @message =~ /^GET/ and not @message like /404/", &e).len(), 1);
    assert_eq!(run("filter user.id in ['ann', 'carl']", &e).len(), 2);
    assert_eq!(run("filter user.id not in ['ann']", &e).len(), 1);
    assert_eq!(run("filter ispresent(latency)", &e).len(), 3);
    assert_eq!(run("filter not ispresent(latency)", &e).len(), 2);
    let rows = run(
        "fields toupper(level) as l, strlen(@logStream) as n | filter ispresent(level) | sort n desc | limit 1",
        &e,
    );
    assert_eq!((field(&rows[0], "l"), field(&rows[0], "n")), (Some("ERROR"), Some("5")));
}

#[test]
fn parse_with_a_glob_and_with_a_regex() {
    let e = events();
    let rows = run("parse @message 'GET * * *ms' as path, status, ms | filter status = 404 | display path, ms", &e);
    assert_eq!(rows, vec![vec![("path".to_string(), "/missing".to_string()), ("ms".to_string(), "3".to_string())]]);
    let rows = run(
        r"parse @message /(?<verb>[A-Z]+) (?<path>\S+) (?<status>\d+)/ | stats count(*) as n by status | sort status",
        &e,
    );
    // Events the pattern did not match form the group without a status, sorted first.
    assert_eq!(column(&rows, "status"), ["-", "200", "404"]);
    assert_eq!(column(&rows, "n"), ["3", "1", "1"]);
}

#[test]
fn stats_by_fields_and_bins() {
    let e = events();
    let rows = run(
        "filter ispresent(level) | stats count(*) as n, avg(latency) as avg, sum(latency), min(latency), max(latency) by level | sort n desc",
        &e,
    );
    assert_eq!(column(&rows, "level"), ["error", "info"]);
    assert_eq!(column(&rows, "n"), ["2", "1"]);
    assert_eq!(column(&rows, "avg"), ["150", "20"]);
    assert_eq!(column(&rows, "sum(latency)"), ["300", "20"]);
    assert_eq!(column(&rows, "min(latency)"), ["50", "20"]);
    assert_eq!(column(&rows, "max(latency)"), ["250", "20"]);
    assert!(rows.iter().all(|r| field(r, "@ptr").is_none()));
    let rows = run("stats count(*) as n by bin(5m) as t | sort t", &e);
    assert_eq!(column(&rows, "n"), ["3", "2"]);
    assert_eq!(column(&rows, "t"), ["2027-01-15 08:00:00.000", "2027-01-15 08:05:00.000"]);
    let rows = run("stats count_distinct(user.id) as users, count(level) as with_level", &e);
    assert_eq!((field(&rows[0], "users"), field(&rows[0], "with_level")), (Some("2"), Some("3")));
}

#[test]
fn sort_limit_and_dedup() {
    let e = events();
    let rows = run("fields @logStream | sort @logStream asc, @timestamp desc | limit 3", &e);
    assert_eq!(column(&rows, "@logStream"), ["nginx", "nginx", "web-1"]);
    let rows = run("fields @logStream | sort @timestamp | dedup @logStream", &e);
    assert_eq!(column(&rows, "@logStream"), ["web-1", "web-2", "nginx"]);
    let q = Query::parse("fields @message").unwrap();
    let mut x = q.start(2);
    for (i, (ts, m, s)) in e.iter().enumerate() {
        x.feed(&Record { timestamp: *ts, ingestion_time: *ts, message: m, stream: s, log: "a:g", ptr: i.to_string() });
    }
    assert_eq!(x.counts(), (5, 5));
    assert_eq!(x.finish().len(), 2);
}

#[test]
fn bad_queries_say_what_and_where() {
    for (query, position, fragment) in [
        ("", 0, "empty"),
        ("feilds @message", 0, "unknown command"),
        ("fields", 6, "expected a value"),
        ("filter a = ", 11, "expected a value"),
        ("stats median(x)", 6, "unknown statistic"),
        ("stats count(*) by bin(5)", 22, "period"),
        ("limit 0", 0, "limit"),
        ("limit 20000", 0, "limit"),
        ("parse @message 'a b' as x", 15, "needs a *"),
        ("parse @message '* *' as x", 15, "captures 2"),
        ("parse @message /(\\d+)/", 15, "names its fields"),
        ("filter x like /(/", 14, "regular expression"),
        ("fields x | nope", 11, "unknown command"),
        ("fields frob(x)", 7, "unknown function"),
        ("fields a b", 9, "expected '|'"),
        ("filter 'open", 7, "unterminated"),
        ("stats count(*) by bin(3parsecs)", 22, "unknown time unit"),
    ] {
        let e = Query::parse(query).expect_err(query);
        assert_eq!(e.position, position, "{query}: {e}");
        assert!(e.to_string().contains(fragment), "{query}: {e}");
    }
}
