//! The ELBv2 handlers in-process: what they answer for a load balancer's life, in ELB's
//! shapes and error codes, and paging.

use serde_json::{Value, json};

use super::SERVICE;
use crate::testing::Harness;

async fn call(h: &Harness, op: &str, input: Value) -> Value {
    h.call_json(&SERVICE, op, input).await.unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

async fn fails(h: &Harness, op: &str, input: Value) -> (String, String) {
    h.call_json(&SERVICE, op, input).await.expect_err(op)
}

async fn subnet(h: &Harness) -> (String, String) {
    let out = h.call_json(&crate::ec2::SERVICE, "DescribeSubnets", json!({})).await.unwrap();
    let s = &out["Subnets"][0];
    (s["SubnetId"].as_str().unwrap().to_string(), s["VpcId"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_load_balancer_answers_in_elbs_shapes() {
    let h = Harness::new();
    let (subnet, vpc) = subnet(&h).await;
    let lb = call(&h, "CreateLoadBalancer", json!({"Name": "web", "Subnets": [subnet]})).await;
    let lb = &lb["LoadBalancers"][0];
    assert_eq!(
        (lb["Type"].as_str(), lb["Scheme"].as_str(), lb["State"]["Code"].as_str()),
        (Some("application"), Some("internet-facing"), Some("active"))
    );
    assert_eq!(lb["VpcId"], vpc);
    assert_eq!(lb["AvailabilityZones"][0]["ZoneName"], "us-east-1a");
    let lb_arn = lb["LoadBalancerArn"].as_str().unwrap().to_string();
    let tg = call(
        &h,
        "CreateTargetGroup",
        json!({"Name": "web", "Protocol": "HTTP", "Port": 80, "VpcId": vpc, "TargetType": "ip", "HealthCheckPath": "/health"}),
    )
    .await;
    let tg = &tg["TargetGroups"][0];
    assert_eq!(
        (
            tg["HealthCheckIntervalSeconds"].as_u64(),
            tg["HealthCheckTimeoutSeconds"].as_u64(),
            tg["HealthyThresholdCount"].as_u64()
        ),
        (Some(30), Some(5), Some(5))
    );
    assert_eq!((tg["Matcher"]["HttpCode"].as_str(), tg["HealthCheckPath"].as_str()), (Some("200"), Some("/health")));
    let tg_arn = tg["TargetGroupArn"].as_str().unwrap().to_string();
    let listener = call(
        &h,
        "CreateListener",
        json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTP", "Port": 8080,
               "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}]}),
    )
    .await;
    let action = &listener["Listeners"][0]["DefaultActions"][0];
    assert_eq!(action["TargetGroupArn"], tg_arn);
    assert_eq!(action["ForwardConfig"]["TargetGroups"][0], json!({"TargetGroupArn": tg_arn, "Weight": 1}));
    let listener_arn = listener["Listeners"][0]["ListenerArn"].as_str().unwrap().to_string();
    call(
        &h,
        "CreateRule",
        json!({"ListenerArn": listener_arn, "Priority": 5,
               "Conditions": [{"Field": "host-header", "HostHeaderConfig": {"Values": ["api.localhost"]}}],
               "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]}),
    )
    .await;
    let rules = call(&h, "DescribeRules", json!({"ListenerArn": listener_arn})).await;
    let rules = rules["Rules"].as_array().unwrap();
    assert_eq!(rules.iter().map(|r| r["Priority"].as_str().unwrap()).collect::<Vec<_>>(), ["5", "default"]);
    assert_eq!(rules[0]["Conditions"][0]["Values"], json!(["api.localhost"]));
    assert_eq!(rules[1]["IsDefault"], true);
    let groups = call(&h, "DescribeTargetGroups", json!({"LoadBalancerArn": lb_arn})).await;
    assert_eq!(groups["TargetGroups"][0]["LoadBalancerArns"], json!([lb_arn]));

    // An EC2 error from the VPC model reaches the client as ELB's.
    let e = fails(
        &h,
        "CreateLoadBalancer",
        json!({"Name": "x", "SecurityGroups": ["sg-0000000000000dead"], "Subnets": [subnet]}),
    )
    .await;
    assert_eq!(e.0, "InvalidSecurityGroup");
    let e = fails(
        &h,
        "CreateTargetGroup",
        json!({"Name": "x", "Protocol": "HTTP", "Port": 80, "VpcId": "vpc-0000000000000dead"}),
    )
    .await;
    assert_eq!(e, ("ValidationError".into(), "The VPC ID 'vpc-0000000000000dead' is not found".into()));
    let e = fails(
        &h,
        "CreateListener",
        json!({"LoadBalancerArn": lb_arn, "Protocol": "HTTPS", "Port": 443,
        "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg_arn}]}),
    )
    .await;
    assert_eq!(e.0, "ValidationError");
    assert!(e.1.contains("Berth does not support"), "{}", e.1);
    let e = fails(&h, "DescribeTrustStores", json!({})).await;
    assert_eq!(e.0, "OperationNotPermitted");
}

#[tokio::test]
async fn pages_follow_markers() {
    let h = Harness::new();
    let (_, vpc) = subnet(&h).await;
    for i in 0..5 {
        call(&h, "CreateTargetGroup", json!({"Name": format!("tg-{i}"), "Protocol": "TCP", "Port": 80, "VpcId": vpc}))
            .await;
    }
    let first = call(&h, "DescribeTargetGroups", json!({"PageSize": 2})).await;
    let names = |v: &Value| {
        v["TargetGroups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["TargetGroupName"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&first), ["tg-0", "tg-1"]);
    let marker = first["NextMarker"].as_str().unwrap();
    let second = call(&h, "DescribeTargetGroups", json!({"PageSize": 3, "Marker": marker})).await;
    assert_eq!(names(&second), ["tg-2", "tg-3", "tg-4"]);
    assert!(second.get("NextMarker").is_none());
    let e = fails(&h, "DescribeTargetGroups", json!({"Marker": "zz"})).await;
    assert_eq!(e.0, "ValidationError");
    let limits = call(&h, "DescribeAccountLimits", json!({})).await;
    assert!(limits["Limits"].as_array().unwrap().contains(&json!({"Name": "target-groups", "Max": "3000"})));
}
