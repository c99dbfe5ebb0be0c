"""CloudWatch metrics against a real `berth`, over each protocol the model names: boto3 and
the AWS CLI (which speak Smithy RPC v2 CBOR first), AWS JSON 1.0 and the AWS query protocol
sent by hand."""

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError


def signed(berth, url, body, headers):
    request = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body, headers=headers)
    creds = botocore.credentials.Credentials(berth.access_key, berth.secret_key)
    botocore.auth.SigV4Auth(creds, "monitoring", "us-east-1").add_auth(request)
    prepared = request.prepare()
    req = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_metrics_with_boto3_over_cbor(berth):
    cw = berth.client("cloudwatch")
    now = datetime.now(timezone.utc)
    cw.put_metric_data(Namespace="App", MetricData=[
        {"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}], "Value": v, "Unit": "Milliseconds",
         "Timestamp": now - timedelta(seconds=s)} for v, s in [(10, 5), (30, 4), (50, 3)]])
    out = cw.get_metric_statistics(Namespace="App", MetricName="Latency", Dimensions=[{"Name": "Service", "Value": "web"}],
                                   StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1), Period=60,
                                   Statistics=["Average", "Maximum", "SampleCount"])
    total = sum(p["SampleCount"] for p in out["Datapoints"])
    assert total == 3, out
    assert max(p["Maximum"] for p in out["Datapoints"]) == 50
    assert all(isinstance(p["Timestamp"], datetime) for p in out["Datapoints"])
    assert out["Datapoints"][0]["Unit"] == "Milliseconds"
    metrics = cw.list_metrics(Namespace="App")["Metrics"]
    assert metrics == [{"Namespace": "App", "MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "web"}]}]
    data = cw.get_metric_data(StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1), MetricDataQueries=[
        {"Id": "lat", "MetricStat": {"Metric": metrics[0], "Period": 300, "Stat": "Sum"}, "ReturnData": False},
        {"Id": "double", "Expression": "lat * 2"}])
    assert data["MetricDataResults"][0]["Id"] == "double"
    assert sum(data["MetricDataResults"][0]["Values"]) == 180
    with pytest.raises(ClientError) as e:
        cw.put_metric_data(Namespace="AWS/ECS", MetricData=[{"MetricName": "m", "Value": 1}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        cw.put_composite_alarm(AlarmName="c", AlarmRule="ALARM(a)")
    assert e.value.response["Error"]["Code"] == "InvalidAction"


def test_the_cli_reads_what_it_put(berth):
    berth.cli("cloudwatch", "put-metric-data", "--namespace", "Shop", "--metric-name", "Orders", "--value", "3",
              "--dimensions", "Store=north")
    end = int(time.time()) + 60
    out = berth.cli("cloudwatch", "get-metric-statistics", "--namespace", "Shop", "--metric-name", "Orders",
                    "--dimensions", "Name=Store,Value=north", "--start-time", str(end - 600), "--end-time", str(end),
                    "--period", "60", "--statistics", "Sum")
    assert [p["Sum"] for p in out["Datapoints"]] == [3.0]


def test_json_1_0_and_query_protocols(berth):
    now = time.time()
    body = json.dumps({"Namespace": "Raw", "MetricData": [{"MetricName": "m", "Value": 4, "Timestamp": now}]}).encode()
    status, headers, _ = signed(berth, berth.endpoint + "/", body,
                                {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "GraniteServiceVersion20100801.PutMetricData"})
    assert status == 200
    assert headers["content-type"] == "application/x-amz-json-1.0"
    form = urllib.parse.urlencode({"Action": "ListMetrics", "Version": "2010-08-01", "Namespace": "Raw"}).encode()
    status, _, xml = signed(berth, berth.endpoint + "/", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200, xml
    assert b"<ListMetricsResponse" in xml and b"<MetricName>m</MetricName>" in xml
    form = urllib.parse.urlencode({"Action": "GetMetricStatistics", "Version": "2010-08-01", "Namespace": "Raw",
                                   "MetricName": "m", "StartTime": "2020-01-01T00:00:00Z", "EndTime": "2020-01-01T00:01:00Z",
                                   "Period": "7", "Statistics.member.1": "Sum"}).encode()
    status, _, xml = signed(berth, berth.endpoint + "/", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"<Code>InvalidParameterValue</Code>" in xml, xml


def test_an_alarm_goes_to_alarm_and_back(berth):
    from ecs_helpers import until
    cw = berth.client("cloudwatch")
    berth.cli("cloudwatch", "put-metric-alarm", "--alarm-name", "slow", "--namespace", "App", "--metric-name", "Latency",
              "--statistic", "Maximum", "--period", "10", "--evaluation-periods", "1", "--threshold", "100",
              "--comparison-operator", "GreaterThanThreshold", "--treat-missing-data", "notBreaching")
    # Without data and with notBreaching it soon is OK (first it is INSUFFICIENT_DATA).
    def state():
        return cw.describe_alarms(AlarmNames=["slow"])["MetricAlarms"][0]["StateValue"]

    # Slow datapoints until a complete period holds one: ALARM.
    def slow():
        cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "Latency", "Value": 500}])
        return state() == "ALARM"
    until(slow, timeout=40, interval=1, what="the alarm to fire")
    # Then no data at all: notBreaching brings it back to OK once the last datapoint has left the
    # evaluation range (as on AWS, an evaluation looks back 2 periods beyond its 1 for real
    # datapoints): up to 4 periods after the last put, plus up to one period until the next
    # evaluation.
    until(lambda: state() == "OK", timeout=70, interval=1, what="the alarm to clear")
    history = cw.describe_alarm_history(AlarmName="slow", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    summaries = [h["HistorySummary"] for h in history]
    assert summaries[0] == "Alarm updated from ALARM to OK", summaries
    assert summaries[1].endswith("to ALARM"), summaries


def test_prometheus_text_counts_the_api_requests(berth):
    ecs = berth.client()
    ecs.list_clusters()
    ecs.list_clusters()
    with pytest.raises(ClientError):
        ecs.describe_services(cluster="nope", services=["x"])
    text = urllib.request.urlopen(berth.endpoint + "/metrics", timeout=10).read().decode()
    assert 'berth_api_requests_total{service="ECS",operation="ListClusters",code="200"} 2' in text, text
    assert 'berth_api_requests_total{service="ECS",operation="DescribeServices",code="400"} 1' in text, text
    assert 'berth_api_request_duration_seconds_bucket{' in text
