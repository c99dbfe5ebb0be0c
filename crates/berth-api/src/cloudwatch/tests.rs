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
            "MissingParameter",
            "Namespace",
        ),
        (
            "PutMetricAlarm",
            alarm(json!({"AlarmActions": ["arn:aws:sns:us-east-1:000000000000:t"]})),
            "InvalidParameterValue",
            "no SNS",
        ),
        (
            "PutMetricAlarm",
            alarm(json!({"ComparisonOperator": "GreaterThanUpperThreshold"})),
            "InvalidParameterValue",
            "anomaly",
        ),
        ("PutMetricAlarm", alarm(json!({"DatapointsToAlarm": 5})), "InvalidParameterValue", "DatapointsToAlarm"),
        ("PutMetricAlarm", alarm(json!({"Period": 45})), "InvalidParameterValue", "Period"),
        ("PutMetricAlarm", alarm(json!({"Statistic": "p99"})), "InvalidParameterValue", "Statistic"),
        ("PutMetricAlarm", alarm(json!({"TreatMissingData": "maybe"})), "InvalidParameterValue", "TreatMissingData"),
        ("PutMetricAlarm", alarm(json!({"ExtendedStatistic": "p99"})), "InvalidParameterValue", "percentiles"),
        ("DeleteAlarms", json!({"AlarmNames": ["nope"]}), "ResourceNotFound", "nope"),
        (
            "SetAlarmState",
            json!({"AlarmName": "nope", "StateValue": "OK", "StateReason": "r"}),
            "ResourceNotFound",
            "nope",
        ),
        (
            "DescribeAlarms",
            json!({"AlarmNames": ["a"], "AlarmNamePrefix": "a"}),
            "InvalidParameterCombination",
            "AlarmNamePrefix",
        ),
        (
            "PutCompositeAlarm",
            json!({"AlarmName": "c", "AlarmRule": "ALARM(a)"}),
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
    assert!(call(&h, "DescribeAlarms", json!({})).await["MetricAlarms"].as_array().unwrap().is_empty());
}

/// A valid PutMetricAlarm input with `extra` members over it.
fn alarm(extra: Value) -> Value {
    let mut a = json!({"AlarmName": "busy", "Namespace": "App", "MetricName": "Latency", "Statistic": "Average",
        "Dimensions": [{"Name": "Service", "Value": "web"}], "Period": 10, "EvaluationPeriods": 3, "DatapointsToAlarm": 2,
        "Threshold": 50.0, "ComparisonOperator": "GreaterThanThreshold"});
    a.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    a
}

#[tokio::test]
async fn alarms_follow_their_metric_m_out_of_n() {
    let h = Harness::new();
    call(&h, "PutMetricAlarm", alarm(json!({"AlarmDescription": "web is slow"}))).await;
    let state =
        |out: Value| out["MetricAlarms"][0]["StateValue"].as_str().unwrap_or_else(|| panic!("{out}")).to_string();
    assert_eq!(state(call(&h, "DescribeAlarms", json!({"AlarmNames": ["busy"]})).await), "INSUFFICIENT_DATA");
    let mut last = std::collections::HashMap::new();
    // Two of the last three 10-second periods above 50: ALARM.
    let put = |v: f64, ago: f64| {
        call(&h, "PutMetricData", json!({"Namespace": "App", "MetricData": [datum(v, NOW - ago, "web")]}))
    };
    put(80.0, 25.0).await;
    put(10.0, 15.0).await;
    put(90.0, 5.0).await;
    assert_eq!(super::alarms::sweep(&h.app, &mut last).await.unwrap(), 1);
    let out = call(&h, "DescribeAlarms", json!({"StateValue": "ALARM"})).await;
    assert_eq!(state(out.clone()), "ALARM");
    assert!(
        out["MetricAlarms"][0]["StateReason"]
            .as_str()
            .unwrap()
            .starts_with("Threshold Crossed: 2 out of the last 3 datapoints")
    );
    assert_eq!(out["MetricAlarms"][0]["AlarmDescription"], "web is slow");
    // Quiet periods bring it back to OK once the busy ones leave the window.
    for ago in [-5.0, -15.0, -25.0] {
        put(5.0, ago).await;
    }
    h.clock.advance(std::time::Duration::from_secs(30));
    assert_eq!(super::alarms::sweep(&h.app, &mut last).await.unwrap(), 1);
    assert_eq!(state(call(&h, "DescribeAlarms", json!({})).await), "OK");
    // SetAlarmState holds until the next evaluation.
    call(&h, "SetAlarmState", json!({"AlarmName": "busy", "StateValue": "ALARM", "StateReason": "testing"})).await;
    assert_eq!(state(call(&h, "DescribeAlarmsForMetric", json!({"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}]})).await), "ALARM");
    h.clock.advance(std::time::Duration::from_secs(10));
    super::alarms::sweep(&h.app, &mut last).await.unwrap();
    let history =
        call(&h, "DescribeAlarmHistory", json!({"AlarmName": "busy", "HistoryItemType": "StateUpdate"})).await;
    let summaries: Vec<&str> = history["AlarmHistoryItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["HistorySummary"].as_str().unwrap())
        .collect();
    assert_eq!(summaries[0], "Alarm updated from ALARM to OK");
    assert_eq!(summaries.len(), 4);
    call(&h, "DeleteAlarms", json!({"AlarmNames": ["busy"]})).await;
    assert!(call(&h, "DescribeAlarms", json!({})).await["MetricAlarms"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn treat_missing_data_decides_an_alarm_without_data() {
    let h = Harness::new();
    call(
        &h,
        "PutMetricAlarm",
        alarm(json!({"AlarmName": "gone", "TreatMissingData": "breaching", "DatapointsToAlarm": 3})),
    )
    .await;
    call(&h, "PutMetricAlarm", alarm(json!({"AlarmName": "quiet", "TreatMissingData": "ignore"}))).await;
    let mut last = std::collections::HashMap::new();
    super::alarms::sweep(&h.app, &mut last).await.unwrap();
    let out = call(&h, "DescribeAlarms", json!({})).await;
    let states: Vec<(&str, &str)> = out["MetricAlarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["AlarmName"].as_str().unwrap(), a["StateValue"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("gone", "ALARM"), ("quiet", "INSUFFICIENT_DATA")]);
}
