//! CloudWatch metrics, in-process through the JSON 1.0 reading of the model.

use serde_json::{Value, json};

use super::SERVICE;
use crate::testing::Harness;

const NOW: f64 = 1_800_000_000.0;

async fn call(h: &Harness, op: &str, input: Value) -> Value {
    h.call_json(&SERVICE, op, input).await.unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

fn datum(value: f64, at: f64, service: &str) -> Value {
    json!({"MetricName": "Latency", "Value": value, "Timestamp": at, "Unit": "Milliseconds",
           "Dimensions": [{"Name": "Service", "Value": service}]})
}

#[tokio::test]
async fn put_then_statistics_and_list() {
    let h = Harness::new();
    let data = vec![
        datum(10.0, NOW - 110.0, "web"),
        datum(30.0, NOW - 100.0, "web"),
        datum(50.0, NOW - 30.0, "web"),
        datum(7.0, NOW - 30.0, "db"),
    ];
    call(&h, "PutMetricData", json!({"Namespace": "App", "MetricData": data})).await;
    call(&h, "PutMetricData", json!({"Namespace": "App", "MetricData": [{"MetricName": "Latency", "Timestamp": NOW - 30.0,
        "StatisticValues": {"SampleCount": 2, "Sum": 30, "Minimum": 10, "Maximum": 20}, "Dimensions": [{"Name": "Service", "Value": "web"}]}]})).await;
    let out = call(
        &h,
        "GetMetricStatistics",
        json!({"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}],
        "StartTime": NOW - 120.0, "EndTime": NOW, "Period": 60, "Statistics": ["SampleCount", "Average", "Maximum"]}),
    )
    .await;
    let points = out["Datapoints"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{out}");
    assert_eq!(
        (points[0]["SampleCount"].as_f64(), points[0]["Average"].as_f64(), points[0]["Maximum"].as_f64()),
        (Some(2.0), Some(20.0), Some(30.0))
    );
    assert_eq!((points[1]["SampleCount"].as_f64(), points[1]["Average"].as_f64()), (Some(3.0), Some(80.0 / 3.0)));
    assert_eq!(points[0]["Unit"], "Milliseconds");
    let listed =
        call(&h, "ListMetrics", json!({"Namespace": "App", "Dimensions": [{"Name": "Service", "Value": "db"}]})).await;
    assert_eq!(
        listed["Metrics"],
        json!([{"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "db"}]}])
    );
    assert_eq!(
        call(&h, "ListMetrics", json!({"RecentlyActive": "PT3H"})).await["Metrics"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn metric_data_with_math_newest_first() {
    let h = Harness::new();
    let data = vec![
        datum(10.0, NOW - 90.0, "web"),
        datum(20.0, NOW - 30.0, "web"),
        datum(1.0, NOW - 90.0, "db"),
        datum(2.0, NOW - 30.0, "db"),
    ];
    call(&h, "PutMetricData", json!({"Namespace": "App", "MetricData": data})).await;
    let stat = |service: &str| json!({"Metric": {"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": service}]}, "Period": 60, "Stat": "Sum"});
    let out = call(
        &h,
        "GetMetricData",
        json!({"StartTime": NOW - 120.0, "EndTime": NOW, "MetricDataQueries": [
            {"Id": "web", "MetricStat": stat("web"), "ReturnData": false},
            {"Id": "db", "MetricStat": stat("db")},
            {"Id": "total", "Expression": "SUM(METRICS()) * 2", "Label": "twice"},
        ]}),
    )
    .await;
    let results = out["MetricDataResults"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["Label"], "Latency");
    assert_eq!(results[1]["Label"], "twice");
    assert_eq!(results[1]["Values"], json!([44.0, 22.0]));
    let stamps = results[1]["Timestamps"].as_array().unwrap();
    assert!(stamps[0].as_f64() > stamps[1].as_f64(), "newest first");
}

#[tokio::test]
async fn bad_inputs_are_refused_and_store_nothing() {
    let h = Harness::new();
    let stat = json!({"Metric": {"Namespace": "App", "MetricName": "Latency"}, "Period": 60, "Stat": "Sum"});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "PutMetricData",
            json!({"Namespace": "AWS/ECS", "MetricData": [datum(1.0, NOW, "x")]}),
            "InvalidParameterValue",
            "reserved",
        ),
        ("PutMetricData", json!({"Namespace": "App", "MetricData": []}), "MissingParameter", "MetricData"),
        (
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": [{"MetricName": "m"}]}),
            "InvalidParameterCombination",
            "one of Value",
        ),
        (
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1, "Values": [1]}]}),
            "InvalidParameterCombination",
            "mutually exclusive",
        ),
        (
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": [{"MetricName": "m", "Values": [1, 2], "Counts": [1]}]}),
            "InvalidParameterCombination",
            "Counts",
        ),
        (
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1, "Timestamp": NOW - 15.0 * 86400.0}]}),
            "InvalidParameterValue",
            "two weeks",
        ),
        (
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1, "StorageResolution": 5}]}),
            "InvalidParameterValue",
            "StorageResolution",
        ),
        (
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1, "Unit": "Parsecs"}]}),
            "InvalidParameterValue",
            "Unit",
        ),
        (
            "PutMetricData",
            json!({"Namespace": "App", "MetricData": [{"MetricName": "m", "StatisticValues": {"SampleCount": 0, "Sum": 1, "Minimum": 2, "Maximum": 1}}]}),
            "InvalidParameterValue",
            "SampleCount",
        ),
        (
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "m", "StartTime": NOW - 60.0, "EndTime": NOW, "Period": 60}),
            "InvalidParameterCombination",
            "Statistics",
        ),
        (
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "m", "StartTime": NOW - 60.0, "EndTime": NOW, "Period": 45, "Statistics": ["Sum"]}),
            "InvalidParameterValue",
            "Period",
        ),
        (
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "m", "StartTime": NOW, "EndTime": NOW - 60.0, "Period": 60, "Statistics": ["Sum"]}),
            "InvalidParameterValue",
            "StartTime",
        ),
        (
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "m", "StartTime": NOW - 86400.0 * 2.0, "EndTime": NOW, "Period": 60, "Statistics": ["Sum"]}),
            "InvalidParameterCombination",
            "exceeds the limit of 1440",
        ),
        (
            "GetMetricStatistics",
            json!({"Namespace": "App", "MetricName": "m", "StartTime": NOW - 60.0, "EndTime": NOW, "Period": 60, "ExtendedStatistics": ["p99"]}),
            "InvalidParameterValue",
            "percentiles",
        ),
        (
            "GetMetricData",
            json!({"StartTime": NOW - 60.0, "EndTime": NOW, "MetricDataQueries": [{"Id": "A", "MetricStat": stat}]}),
            "InvalidParameterValue",
            "lowercase",
        ),
        (
            "GetMetricData",
            json!({"StartTime": NOW - 60.0, "EndTime": NOW, "MetricDataQueries": [{"Id": "a"}]}),
            "InvalidParameterCombination",
            "exactly one",
        ),
        (
            "GetMetricData",
            json!({"StartTime": NOW - 60.0, "EndTime": NOW, "MetricDataQueries": [{"Id": "a", "Expression": "b * 2"}]}),
            "InvalidParameterValue",
            "no query has the id 'b'",
        ),
        (
            "GetMetricData",
            json!({"StartTime": NOW - 60.0, "EndTime": NOW, "MetricDataQueries": [{"Id": "a", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "m"}, "Period": 60, "Stat": "p90"}}]}),
            "InvalidParameterValue",
            "p90",
        ),
        ("ListMetrics", json!({"NextToken": "x"}), "InvalidNextToken", "NextToken"),
        ("ListMetrics", json!({"IncludeLinkedAccounts": true}), "InvalidParameterValue", "cross-account"),
        (
            "PutMetricAlarm",
            json!({"AlarmName": "a", "EvaluationPeriods": 1, "ComparisonOperator": "GreaterThanThreshold"}),
            "InvalidAction",
            "does not implement",
        ),
    ];
    for (op, input, code, fragment) in cases {
        let (got, message) = h.call_json(&SERVICE, op, input.clone()).await.expect_err(&format!("{op} {input}"));
        assert_eq!(got, code, "{op} {input}: {message}");
        assert!(message.contains(fragment), "{op} {input}: {message} lacks {fragment}");
    }
    assert!(call(&h, "ListMetrics", json!({})).await["Metrics"].as_array().unwrap().is_empty());
}
