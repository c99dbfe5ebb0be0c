//! The CloudWatch Logs handlers, in-process: each operation's behaviour and its bad inputs
//! (with the model's checks, as the JSON protocol runs them).

use std::time::Duration;

use berth_store::StoreExt;
use serde_json::{Value, json};

use super::SERVICE;
use crate::testing::Harness;

const NOW: i64 = 1_800_000_000_000;
const DAY: i64 = 86_400_000;

async fn call(h: &Harness, op: &str, input: Value) -> Value {
    h.call_json(&SERVICE, op, input).await.unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

async fn group_with_stream(h: &Harness, group: &str, stream: &str) {
    call(h, "CreateLogGroup", json!({"logGroupName": group})).await;
    call(h, "CreateLogStream", json!({"logGroupName": group, "logStreamName": stream})).await;
}

async fn put(h: &Harness, group: &str, stream: &str, events: &[(i64, &str)]) -> Value {
    let events: Vec<Value> = events.iter().map(|(t, m)| json!({"timestamp": t, "message": m})).collect();
    call(h, "PutLogEvents", json!({"logGroupName": group, "logStreamName": stream, "logEvents": events})).await
}

fn messages(out: &Value) -> Vec<String> {
    out["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn groups_are_made_described_retained_and_deleted() {
    let h = Harness::new();
    for name in ["/ecs/web", "/ecs/db", "/other/x"] {
        call(&h, "CreateLogGroup", json!({"logGroupName": name, "tags": {"team": "a"}})).await;
    }
    let e = h.call_json(&SERVICE, "CreateLogGroup", json!({"logGroupName": "/ecs/web"})).await.unwrap_err();
    assert_eq!(e.0, "ResourceAlreadyExistsException");
    let out = call(&h, "DescribeLogGroups", json!({"logGroupNamePrefix": "/ecs/"})).await;
    let names: Vec<&str> =
        out["logGroups"].as_array().unwrap().iter().map(|g| g["logGroupName"].as_str().unwrap()).collect();
    assert_eq!(names, ["/ecs/db", "/ecs/web"]);
    let g = &out["logGroups"][1];
    assert_eq!(g["arn"], "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web:*");
    assert_eq!(g["logGroupArn"], "arn:aws:logs:us-east-1:000000000000:log-group:/ecs/web");
    assert_eq!(g["creationTime"], NOW);
    assert_eq!(g["logGroupClass"], "STANDARD");
    assert!(g.get("retentionInDays").is_none());
    let out = call(&h, "DescribeLogGroups", json!({"logGroupNamePattern": "b"})).await;
    assert_eq!(out["logGroups"].as_array().unwrap().len(), 2);
    // Paging, a group at a time.
    let first = call(&h, "DescribeLogGroups", json!({"limit": 2})).await;
    assert_eq!(first["logGroups"].as_array().unwrap().len(), 2);
    let rest = call(&h, "DescribeLogGroups", json!({"limit": 2, "nextToken": first["nextToken"]})).await;
    assert_eq!(rest["logGroups"][0]["logGroupName"], "/other/x");
    assert!(rest.get("nextToken").is_none());

    call(&h, "PutRetentionPolicy", json!({"logGroupName": "/ecs/web", "retentionInDays": 7})).await;
    let out = call(&h, "DescribeLogGroups", json!({"logGroupNamePrefix": "/ecs/web"})).await;
    assert_eq!(out["logGroups"][0]["retentionInDays"], 7);
    call(&h, "DeleteRetentionPolicy", json!({"logGroupName": "/ecs/web"})).await;
    let out = call(&h, "DescribeLogGroups", json!({"logGroupNamePrefix": "/ecs/web"})).await;
    assert!(out["logGroups"][0].get("retentionInDays").is_none());

    call(&h, "DeleteLogGroup", json!({"logGroupName": "/ecs/web"})).await;
    let e = h.call_json(&SERVICE, "DeleteLogGroup", json!({"logGroupName": "/ecs/web"})).await.unwrap_err();
    assert_eq!(e, ("ResourceNotFoundException".into(), "The specified log group does not exist.".into()));
}

#[tokio::test]
async fn a_group_made_again_starts_without_the_old_events() {
    let h = Harness::new();
    group_with_stream(&h, "g", "s").await;
    put(&h, "g", "s", &[(NOW, "old")]).await;
    call(&h, "DeleteLogGroup", json!({"logGroupName": "g"})).await;
    group_with_stream(&h, "g", "s").await;
    let out = call(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s"})).await;
    assert!(messages(&out).is_empty());
    assert_eq!(h.app.logs.stored_groups().unwrap().len(), 1);
}

#[tokio::test]
async fn streams_are_listed_by_name_or_last_event_time() {
    let h = Harness::new();
    group_with_stream(&h, "g", "b").await;
    for s in ["a", "c"] {
        call(&h, "CreateLogStream", json!({"logGroupName": "g", "logStreamName": s})).await;
    }
    let e =
        h.call_json(&SERVICE, "CreateLogStream", json!({"logGroupName": "g", "logStreamName": "a"})).await.unwrap_err();
    assert_eq!(e.0, "ResourceAlreadyExistsException");
    put(&h, "g", "a", &[(NOW + 3, "x")]).await;
    put(&h, "g", "c", &[(NOW + 1, "x"), (NOW + 2, "y")]).await;
    let names = |out: &Value| -> Vec<String> {
        out["logStreams"].as_array().unwrap().iter().map(|s| s["logStreamName"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&call(&h, "DescribeLogStreams", json!({"logGroupName": "g"})).await), ["a", "b", "c"]);
    let by_time =
        call(&h, "DescribeLogStreams", json!({"logGroupName": "g", "orderBy": "LastEventTime", "descending": true}))
            .await;
    assert_eq!(names(&by_time), ["a", "c", "b"]);
    let c = &by_time["logStreams"][1];
    assert_eq!((c["firstEventTimestamp"].as_i64(), c["lastEventTimestamp"].as_i64()), (Some(NOW + 1), Some(NOW + 2)));
    assert_eq!(c["arn"], "arn:aws:logs:us-east-1:000000000000:log-group:g:log-stream:c");
    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:g";
    let paged = call(&h, "DescribeLogStreams", json!({"logGroupIdentifier": arn, "limit": 2})).await;
    assert_eq!(names(&paged), ["a", "b"]);
    let rest =
        call(&h, "DescribeLogStreams", json!({"logGroupName": "g", "limit": 2, "nextToken": paged["nextToken"]})).await;
    assert_eq!(names(&rest), ["c"]);
    call(&h, "DeleteLogStream", json!({"logGroupName": "g", "logStreamName": "a"})).await;
    assert_eq!(
        names(&call(&h, "DescribeLogStreams", json!({"logGroupName": "g", "logStreamNamePrefix": "a"})).await),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn put_keeps_what_fits_and_reports_what_it_rejected() {
    let h = Harness::new();
    group_with_stream(&h, "g", "s").await;
    call(&h, "PutRetentionPolicy", json!({"logGroupName": "g", "retentionInDays": 5})).await;
    let out = put(
        &h,
        "g",
        "s",
        &[
            (NOW - 15 * DAY, "too old"),
            (NOW - 6 * DAY, "expired"),
            (NOW - 1000, "kept"),
            (NOW + 3 * 3_600_000, "too new"),
        ],
    )
    .await;
    assert_eq!(
        out,
        json!({"rejectedLogEventsInfo": {"tooOldLogEventEndIndex": 1, "expiredLogEventEndIndex": 2, "tooNewLogEventStartIndex": 3}})
    );
    let got = call(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s"})).await;
    assert_eq!(messages(&got), ["kept"]);
    assert_eq!(got["events"][0]["ingestionTime"], NOW);
    assert_eq!(put(&h, "g", "s", &[(NOW, "fine")]).await, json!({}));
}

#[tokio::test]
async fn get_pages_both_ways_and_ends_on_a_repeated_token() {
    let h = Harness::new();
    group_with_stream(&h, "g", "s").await;
    put(&h, "g", "s", &[(NOW, "0"), (NOW + 1, "1"), (NOW + 2, "2")]).await;
    put(&h, "g", "s", &[(NOW + 1, "1b"), (NOW + 5, "5")]).await;
    let mut seen = Vec::new();
    let mut input = json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true, "limit": 2});
    loop {
        let out = call(&h, "GetLogEvents", input.clone()).await;
        seen.extend(messages(&out));
        if input.get("nextToken") == Some(&out["nextForwardToken"]) {
            break;
        }
        input["nextToken"] = out["nextForwardToken"].clone();
    }
    assert_eq!(seen, ["0", "1", "1b", "2", "5"]);
    // From the end, backwards.
    let last = call(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 2})).await;
    assert_eq!(messages(&last), ["2", "5"]);
    let before = call(
        &h,
        "GetLogEvents",
        json!({"logGroupName": "g", "logStreamName": "s", "limit": 2, "nextToken": last["nextBackwardToken"]}),
    )
    .await;
    assert_eq!(messages(&before), ["1", "1b"]);
    // A time window: start inclusive, end exclusive.
    let window = call(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true, "startTime": NOW + 1, "endTime": NOW + 5})).await;
    assert_eq!(messages(&window), ["1", "1b", "2"]);
    // New events show up after the last forward token.
    put(&h, "g", "s", &[(NOW + 9, "9")]).await;
    let more = call(&h, "GetLogEvents", input).await;
    assert_eq!(messages(&more), ["9"]);
}

#[tokio::test]
async fn filter_matches_patterns_across_streams_and_pages() {
    let h = Harness::new();
    group_with_stream(&h, "g", "web-1").await;
    call(&h, "CreateLogStream", json!({"logGroupName": "g", "logStreamName": "db-1"})).await;
    put(&h, "g", "web-1", &[(NOW, r#"{"level":"error","latency":250}"#), (NOW + 1, r#"{"level":"info","latency":5}"#)])
        .await;
    put(&h, "g", "db-1", &[(NOW, "ERROR disk"), (NOW + 2, r#"{"level":"error","latency":50}"#)]).await;
    let f = |extra: Value| {
        let mut input = json!({"logGroupName": "g"});
        input.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        input
    };
    let out =
        call(&h, "FilterLogEvents", f(json!({"filterPattern": r#"{ $.level = "error" && $.latency > 100 }"#}))).await;
    assert_eq!(messages(&out), [r#"{"level":"error","latency":250}"#]);
    assert_eq!(out["events"][0]["logStreamName"], "web-1");
    let out = call(&h, "FilterLogEvents", f(json!({"filterPattern": "ERROR", "logStreamNamePrefix": "db"}))).await;
    assert_eq!(messages(&out), ["ERROR disk"]);
    let out = call(&h, "FilterLogEvents", f(json!({"logStreamNames": ["web-1"], "startTime": NOW + 1}))).await;
    assert_eq!(messages(&out).len(), 1);
    let out = call(&h, "FilterLogEvents", f(json!({"endTime": NOW}))).await;
    assert_eq!(messages(&out).len(), 2, "endTime is inclusive");
    // All four, one a page; event ids unique.
    let mut ids = std::collections::BTreeSet::new();
    let mut input = f(json!({"limit": 1}));
    loop {
        let out = call(&h, "FilterLogEvents", input.clone()).await;
        for e in out["events"].as_array().unwrap() {
            assert!(ids.insert(e["eventId"].as_str().unwrap().to_string()));
        }
        match out.get("nextToken") {
            Some(t) => input["nextToken"] = t.clone(),
            None => break,
        }
    }
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn retention_hides_and_the_sweep_removes_expired_events_and_orphans() {
    let h = Harness::new();
    group_with_stream(&h, "g", "s").await;
    put(&h, "g", "s", &[(NOW - 3 * DAY, "old"), (NOW - 2 * DAY, "older than 1 day")]).await;
    put(&h, "g", "s", &[(NOW, "new")]).await;
    call(&h, "PutRetentionPolicy", json!({"logGroupName": "g", "retentionInDays": 1})).await;
    let out = call(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true})).await;
    assert_eq!(messages(&out), ["new"]);
    let out = call(&h, "FilterLogEvents", json!({"logGroupName": "g"})).await;
    assert_eq!(messages(&out), ["new"]);
    // Two days on, everything is past retention: the sweep removes it from disk.
    h.clock.advance(Duration::from_secs(2 * 86_400));
    assert_eq!(super::retention::sweep(&h.app).unwrap(), 1);
    call(&h, "DeleteRetentionPolicy", json!({"logGroupName": "g"})).await;
    let out = call(&h, "GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true})).await;
    assert!(messages(&out).is_empty());
    // A directory no group names (a crash mid-deletion) goes too.
    h.app
        .logs
        .group("orphan")
        .unwrap()
        .append("s", vec![berth_logs::segments::Event { timestamp: NOW, ingestion_time: NOW, message: "x".into() }])
        .unwrap();
    assert_eq!(h.app.logs.stored_groups().unwrap().len(), 2);
    super::retention::sweep(&h.app).unwrap();
    assert_eq!(h.app.logs.stored_groups().unwrap().len(), 1);
}

#[tokio::test]
async fn tags_by_arn_and_by_name() {
    let h = Harness::new();
    call(&h, "CreateLogGroup", json!({"logGroupName": "g", "tags": {"a": "1"}})).await;
    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:g";
    call(&h, "TagResource", json!({"resourceArn": arn, "tags": {"b": "2"}})).await;
    call(&h, "TagLogGroup", json!({"logGroupName": "g", "tags": {"c": "3"}})).await;
    call(&h, "UntagResource", json!({"resourceArn": arn, "tagKeys": ["a"]})).await;
    assert_eq!(
        call(&h, "ListTagsForResource", json!({"resourceArn": arn})).await,
        json!({"tags": {"b": "2", "c": "3"}})
    );
    call(&h, "UntagLogGroup", json!({"logGroupName": "g", "tags": ["b"]})).await;
    assert_eq!(call(&h, "ListTagsLogGroup", json!({"logGroupName": "g"})).await, json!({"tags": {"c": "3"}}));
}

/// Every operation's bad inputs: the exception CloudWatch Logs names, a message saying what
/// is wrong, and nothing changed in the store or on disk.
#[tokio::test]
async fn bad_inputs_are_refused_and_change_nothing() {
    let h = Harness::new();
    group_with_stream(&h, "g", "s").await;
    put(&h, "g", "s", &[(NOW, "x")]).await;
    let arn = "arn:aws:logs:us-east-1:000000000000:log-group:g";
    let big = "x".repeat(600_000);
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("CreateLogGroup", json!({}), "InvalidParameterException", "logGroupName"),
        ("CreateLogGroup", json!({"logGroupName": "has space"}), "InvalidParameterException", "Invalid log group name"),
        ("CreateLogGroup", json!({"logGroupName": "aws/x"}), "InvalidParameterException", "aws/"),
        (
            "CreateLogGroup",
            json!({"logGroupName": "k", "kmsKeyId": "arn:aws:kms:us-east-1:000000000000:key/x"}),
            "InvalidParameterException",
            "KMS",
        ),
        (
            "CreateLogGroup",
            json!({"logGroupName": "k", "logGroupClass": "GOLD"}),
            "InvalidParameterException",
            "logGroupClass",
        ),
        (
            "CreateLogGroup",
            json!({"logGroupName": "k", "tags": {"aws:x": "1"}}),
            "InvalidParameterException",
            "reserved",
        ),
        ("DeleteLogGroup", json!({"logGroupName": "nope"}), "ResourceNotFoundException", "log group does not exist"),
        (
            "DescribeLogGroups",
            json!({"logGroupNamePrefix": "a", "logGroupNamePattern": "b"}),
            "InvalidParameterException",
            "mutually exclusive",
        ),
        ("DescribeLogGroups", json!({"limit": 51}), "InvalidParameterException", "limit"),
        ("DescribeLogGroups", json!({"nextToken": "zz"}), "InvalidParameterException", "nextToken"),
        ("DescribeLogGroups", json!({"includeLinkedAccounts": true}), "InvalidParameterException", "cross-account"),
        (
            "PutRetentionPolicy",
            json!({"logGroupName": "g", "retentionInDays": 2}),
            "InvalidParameterException",
            "retentionInDays",
        ),
        (
            "PutRetentionPolicy",
            json!({"logGroupName": "nope", "retentionInDays": 1}),
            "ResourceNotFoundException",
            "log group",
        ),
        ("DeleteRetentionPolicy", json!({"logGroupName": "nope"}), "ResourceNotFoundException", "log group"),
        (
            "CreateLogStream",
            json!({"logGroupName": "nope", "logStreamName": "s"}),
            "ResourceNotFoundException",
            "log group",
        ),
        (
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "a:b"}),
            "InvalidParameterException",
            "Invalid log stream name",
        ),
        (
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "s"}),
            "ResourceAlreadyExistsException",
            "already exists",
        ),
        (
            "DeleteLogStream",
            json!({"logGroupName": "g", "logStreamName": "nope"}),
            "ResourceNotFoundException",
            "log stream does not exist",
        ),
        ("DescribeLogStreams", json!({}), "InvalidParameterException", "logGroupName or logGroupIdentifier"),
        (
            "DescribeLogStreams",
            json!({"logGroupName": "g", "logGroupIdentifier": "g"}),
            "InvalidParameterException",
            "mutually exclusive",
        ),
        (
            "DescribeLogStreams",
            json!({"logGroupName": "g", "orderBy": "LastEventTime", "logStreamNamePrefix": "s"}),
            "InvalidParameterException",
            "LastEventTime",
        ),
        ("DescribeLogStreams", json!({"logGroupName": "g", "orderBy": "Size"}), "InvalidParameterException", "orderBy"),
        (
            "DescribeLogStreams",
            json!({"logGroupIdentifier": "arn:aws:logs:eu-west-1:1:log-group:g"}),
            "InvalidParameterException",
            "not a log group ARN",
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "nope", "logEvents": [{"timestamp": NOW, "message": "m"}]}),
            "ResourceNotFoundException",
            "log stream",
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": []}),
            "InvalidParameterException",
            "logEvents",
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": NOW + 1, "message": "b"}, {"timestamp": NOW, "message": "a"}]}),
            "InvalidParameterException",
            "chronological",
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": NOW - 2 * DAY, "message": "a"}, {"timestamp": NOW, "message": "b"}]}),
            "InvalidParameterException",
            "24 hours",
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": NOW, "message": big}, {"timestamp": NOW, "message": big}]}),
            "InvalidParameterException",
            "1048576",
        ),
        (
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": NOW, "message": "m"}], "entity": {"keyAttributes": {"Type": "Service"}}}),
            "InvalidParameterException",
            "entit",
        ),
        (
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "nextToken": "f/1"}),
            "InvalidParameterException",
            "nextToken",
        ),
        (
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "nope"}),
            "ResourceNotFoundException",
            "log stream",
        ),
        (
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 10001}),
            "InvalidParameterException",
            "limit",
        ),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "filterPattern": "{ $.a = "}),
            "InvalidParameterException",
            "Invalid filter pattern",
        ),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "logStreamNames": ["s"], "logStreamNamePrefix": "s"}),
            "InvalidParameterException",
            "mutually exclusive",
        ),
        (
            "FilterLogEvents",
            json!({"logGroupName": "g", "nextToken": "nope"}),
            "InvalidParameterException",
            "nextToken",
        ),
        ("FilterLogEvents", json!({"logGroupName": "nope"}), "ResourceNotFoundException", "log group"),
        (
            "TagResource",
            json!({"resourceArn": format!("{arn}:*"), "tags": {"a": "1"}}),
            "InvalidParameterException",
            "log groups only",
        ),
        (
            "TagResource",
            json!({"resourceArn": arn, "tags": (0..51).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
            "InvalidParameterException",
            "tags",
        ),
        ("TagLogGroup", json!({"logGroupName": "nope", "tags": {"a": "1"}}), "ResourceNotFoundException", "log group"),
        (
            "ListTagsForResource",
            json!({"resourceArn": "arn:aws:logs:us-east-1:000000000000:log-group:nope"}),
            "ResourceNotFoundException",
            "log group",
        ),
        ("GetQueryResults", json!({"queryId": "q"}), "ResourceNotFoundException", "Query does not exist"),
        ("StopQuery", json!({"queryId": "q"}), "ResourceNotFoundException", "Query does not exist"),
        (
            "StartQuery",
            json!({"logGroupName": "g", "startTime": 0, "endTime": 1, "queryString": "feilds x"}),
            "MalformedQueryException",
            "unknown command",
        ),
        (
            "StartQuery",
            json!({"logGroupName": "g", "startTime": 2, "endTime": 1, "queryString": "fields x"}),
            "InvalidParameterException",
            "endTime",
        ),
        (
            "StartQuery",
            json!({"logGroupName": "nope", "startTime": 0, "endTime": 1, "queryString": "fields x"}),
            "ResourceNotFoundException",
            "log group",
        ),
        (
            "StartQuery",
            json!({"logGroupName": "g", "logGroupNames": ["g"], "startTime": 0, "endTime": 1, "queryString": "fields x"}),
            "InvalidParameterException",
            "exactly one",
        ),
        (
            "StartQuery",
            json!({"logGroupName": "g", "startTime": 0, "endTime": 1, "queryString": "fields x", "queryLanguage": "SQL"}),
            "InvalidParameterException",
            "CWLI",
        ),
        (
            "PutMetricFilter",
            json!({"logGroupName": "g", "filterName": "f", "filterPattern": "", "metricTransformations": [{"metricName": "m", "metricNamespace": "n", "metricValue": "1"}]}),
            "InvalidOperationException",
            "does not implement",
        ),
    ];
    let snapshot = || -> Vec<(String, Vec<u8>)> {
        h.app.store().list("").unwrap().into_iter().map(|kv| (kv.key, kv.value)).collect()
    };
    let before = snapshot();
    let events_before = call(&h, "FilterLogEvents", json!({"logGroupName": "g"})).await;
    for (op, input, code, fragment) in cases {
        let (got, message) = h.call_json(&SERVICE, op, input.clone()).await.expect_err(&format!("{op} {input}"));
        assert_eq!(got, code, "{op} {input}: {message}");
        assert!(message.contains(fragment), "{op} {input}: {message} lacks {fragment}");
    }
    assert_eq!(before, snapshot());
    assert_eq!(events_before, call(&h, "FilterLogEvents", json!({"logGroupName": "g"})).await);
}

#[tokio::test]
async fn insights_queries_run_in_the_background_and_report_results() {
    let h = Harness::new();
    group_with_stream(&h, "g", "s").await;
    put(
        &h,
        "g",
        "s",
        &[
            (NOW - 2000, r#"{"level":"error","ms":30}"#),
            (NOW - 1000, r#"{"level":"info","ms":10}"#),
            (NOW, r#"{"level":"error","ms":50}"#),
        ],
    )
    .await;
    let query = "filter level = 'error' | stats count(*) as n, avg(ms) as avg by level";
    let id = call(
        &h,
        "StartQuery",
        json!({"logGroupName": "g", "startTime": NOW / 1000 - 60, "endTime": NOW / 1000, "queryString": query}),
    )
    .await["queryId"]
        .clone();
    let mut out = Value::Null;
    for _ in 0..100 {
        out = call(&h, "GetQueryResults", json!({"queryId": id})).await;
        if out["status"] != "Running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(out["status"], "Complete");
    assert_eq!(
        out["results"],
        json!([[{"field": "level", "value": "error"}, {"field": "n", "value": "2"}, {"field": "avg", "value": "40"}]])
    );
    assert_eq!(out["statistics"]["recordsScanned"], 3.0);
    assert_eq!(out["statistics"]["recordsMatched"], 2.0);
    let listed = call(&h, "DescribeQueries", json!({"logGroupName": "g", "status": "Complete"})).await;
    assert_eq!(listed["queries"][0]["queryId"], id);
    assert_eq!(call(&h, "StopQuery", json!({"queryId": id})).await, json!({"success": false}));
}
