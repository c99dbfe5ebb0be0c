//! The whole pipeline in-process, one signed HTTP request at a time through the router: each
//! protocol reaches its service, and refuses bad requests in its own shape.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::App;
use crate::sigv4::{self, Caller};
use crate::testing::Harness;

const KEY: &str = "AKIDTEST";
const SECRET: &str = "SECRET";

/// An installation over a fresh store, with one key pair (`KEY`, `SECRET`).
fn harness() -> Harness {
    Harness::with_keys(&[(KEY, SECRET)])
}

/// A request as a client sends it.
struct Call<'a> {
    method: &'a str,
    uri: &'a str,
    /// The credential scope's service; `None` sends the request unsigned.
    signed_for: Option<&'a str>,
    secret: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    body: Vec<u8>,
}

impl<'a> Call<'a> {
    fn form(service: &'a str, body: &str) -> Self {
        Call {
            method: "POST",
            uri: "/",
            signed_for: Some(service),
            secret: SECRET,
            headers: vec![("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: body.as_bytes().to_vec(),
        }
    }

    fn json(target: &'a str, body: &str) -> Self {
        Call {
            method: "POST",
            uri: "/",
            signed_for: Some("ecs"),
            secret: SECRET,
            headers: vec![("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target)],
            body: body.as_bytes().to_vec(),
        }
    }

    async fn send(self, app: &Arc<App>) -> (StatusCode, HeaderMap, String) {
        let mut headers = vec![("host", "127.0.0.1:8600")];
        headers.extend(self.headers.iter().copied());
        let mut request = Request::builder().method(self.method).uri(self.uri);
        for (k, v) in &headers {
            request = request.header(*k, *v);
        }
        if let Some(service) = self.signed_for {
            let signed = sigv4::sign_headers(
                KEY,
                self.secret,
                "us-east-1",
                service,
                SystemTime::now(),
                self.method,
                self.uri,
                &headers,
                &self.body,
            );
            for (k, v) in signed {
                request = request.header(k, v);
            }
        }
        let response = crate::router(app.clone()).oneshot(request.body(Body::from(self.body)).unwrap()).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
    }
}

/// The text of the first `<name>` element of `xml`.
fn element<'x>(xml: &'x str, name: &str) -> Option<&'x str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + end])
}

#[tokio::test]
async fn json_reaches_ecs_and_refuses_in_json() {
    let harness = harness();
    let app = &harness.app;
    let (status, headers, body) = Call::json("AmazonEC2ContainerServiceV20141113.ListClusters", "{}").send(app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    assert!(headers.contains_key("x-amzn-requestid"));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"clusterArns": []}));
    let (status, _, body) = Call::json("AmazonEC2ContainerServiceV20141113.NoSuchThing", "{}").send(app).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["__type"], "UnknownOperationException");
    let (_, _, body) = Call::json(
        "AmazonEC2ContainerServiceV20141113.CreateCapacityProvider",
        "{\"name\": \"c\", \"autoScalingGroupProvider\": {\"autoScalingGroupArn\": \"a\"}}",
    )
    .send(app)
    .await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["__type"], "UnsupportedFeatureException");
}

#[tokio::test]
async fn query_reaches_elbv2_by_post_and_get() {
    let harness = harness();
    let app = &harness.app;
    let (status, headers, body) =
        Call::form("elasticloadbalancing", "Action=DescribeLoadBalancers&Version=2015-12-01").send(app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "text/xml");
    let id = headers["x-amzn-requestid"].to_str().unwrap();
    assert_eq!(element(&body, "RequestId"), Some(id));
    assert_eq!(element(&body, "LoadBalancers"), Some(""));
    let get = Call {
        method: "GET",
        uri: "/?Action=DescribeLoadBalancers&Version=2015-12-01&PageSize=10",
        headers: vec![],
        body: vec![],
        ..Call::form("elasticloadbalancing", "")
    };
    let (status, _, body) = get.send(app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("<DescribeLoadBalancersResult>"), "{body}");
}

#[tokio::test]
async fn query_refusals_are_error_responses() {
    let harness = harness();
    let app = &harness.app;
    let cases = [
        ("Action=Frobnicate&Version=2015-12-01", 400, "InvalidAction"),
        ("Version=2015-12-01", 400, "MissingAction"),
        ("Action=DescribeLoadBalancers&Version=2012-06-01", 400, "InvalidParameterValue"),
        ("Action=DescribeLoadBalancers&Version=2015-12-01&PageSize=0", 400, "ValidationError"),
        ("Action=DescribeLoadBalancers&Version=2015-12-01&PageSize=ten", 400, "ValidationError"),
        ("Action=DescribeLoadBalancers&Version=2015-12-01&Colour=red", 400, "ValidationError"),
        ("Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=web", 400, "LoadBalancerNotFound"),
        ("Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=%zz", 400, "MalformedQueryString"),
        ("Action=DescribeTags&Version=2015-12-01", 400, "ValidationError"),
        ("Action=DescribeTags&Version=2015-12-01&ResourceArns.member.1=a", 400, "ValidationError"),
        ("Action=DescribeTrustStores&Version=2015-12-01", 400, "OperationNotPermitted"),
    ];
    for (form, status, code) in cases {
        let (st, headers, body) = Call::form("elasticloadbalancing", form).send(app).await;
        assert_eq!((st.as_u16(), element(&body, "Code")), (status, Some(code)), "{form}: {body}");
        assert!(body.starts_with("<?xml") && body.contains("<ErrorResponse"), "{body}");
        assert_eq!(element(&body, "Type"), Some("Sender"));
        assert_eq!(element(&body, "RequestId"), headers["x-amzn-requestid"].to_str().ok());
    }
    let (st, _, body) = Call {
        secret: "WRONG",
        ..Call::form("elasticloadbalancing", "Action=DescribeLoadBalancers&Version=2015-12-01")
    }
    .send(app)
    .await;
    assert_eq!((st.as_u16(), element(&body, "Code")), (403, Some("SignatureDoesNotMatch")));
    let (st, _, body) =
        Call { signed_for: None, ..Call::form("", "Action=DescribeLoadBalancers&Version=2015-12-01") }.send(app).await;
    assert_eq!((st.as_u16(), element(&body, "Code")), (403, Some("MissingAuthenticationToken")));
    let big = format!("Action=DescribeLoadBalancers&Version=2015-12-01&Marker={}", "m".repeat(1 << 20));
    let (st, _, body) = Call::form("elasticloadbalancing", &big).send(app).await;
    assert_eq!((st.as_u16(), element(&body, "Code")), (413, Some("RequestEntityTooLarge")));
    let (_, _, body) = Call::form("sqs", "Action=ListQueues&Version=2012-11-05").send(app).await;
    assert_eq!(element(&body, "Code"), Some("InvalidAction"));
}

#[tokio::test]
async fn ec2_reaches_zones_and_refuses_in_ec2_shape() {
    let harness = harness();
    let app = &harness.app;
    let (status, headers, body) =
        Call::form("ec2", "Action=DescribeAvailabilityZones&Version=2016-11-15").send(app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "text/xml;charset=UTF-8");
    assert!(body.contains("<DescribeAvailabilityZonesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"));
    assert_eq!(element(&body, "requestId").map(str::len), Some(36));
    assert_eq!(element(&body, "zoneName"), Some("us-east-1a"));
    assert_eq!(element(&body, "zoneId"), Some("use1-az1"));
    let cases = [
        ("Action=DescribeAvailabilityZones&Version=2016-11-15&DryRun=true", 412, "DryRunOperation"),
        ("Action=DescribeAvailabilityZones&Version=2016-11-15&ZoneName.1=us-east-1z", 400, "InvalidParameterValue"),
        (
            "Action=DescribeAvailabilityZones&Version=2016-11-15&Filter.1.Name=colour&Filter.1.Value.1=x",
            400,
            "InvalidParameterValue",
        ),
        ("Action=DescribeAvailabilityZones&Version=2016-11-15&ZoneNames.1=a", 400, "UnknownParameter"),
        ("Action=DescribeAvailabilityZones&Version=2016-11-15&DryRun=perhaps", 400, "InvalidParameterValue"),
        ("Action=DeleteVpc&Version=2016-11-15", 400, "MissingParameter"),
        ("Action=DeleteVpc&Version=2016-11-15&VpcId=vpc-1", 400, "InvalidVpcID.Malformed"),
        ("Action=DeleteVpc&Version=2016-11-15&VpcId=vpc-0123456789abcdef0", 400, "InvalidVpcID.NotFound"),
        ("Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0/16&Ipv6Pool=x", 400, "UnsupportedOperation"),
        ("Action=RunInstances&Version=2016-11-15", 400, "InvalidAction"),
    ];
    for (form, status, code) in cases {
        let (st, _, body) = Call::form("ec2", form).send(app).await;
        assert_eq!((st.as_u16(), element(&body, "Code")), (status, Some(code)), "{form}: {body}");
        assert!(body.contains("<Response><Errors><Error>"), "{body}");
        assert_eq!(element(&body, "RequestID").map(str::len), Some(36));
    }
    let (st, _, body) =
        Call { secret: "WRONG", ..Call::form("ec2", "Action=DescribeAvailabilityZones&Version=2016-11-15") }
            .send(app)
            .await;
    assert_eq!((st.as_u16(), element(&body, "Code")), (401, Some("AuthFailure")));
    let (st, _, body) =
        Call { signed_for: None, ..Call::form("", "Action=DescribeAvailabilityZones&Version=2016-11-15") }
            .send(app)
            .await;
    assert_eq!((st.as_u16(), element(&body, "Code")), (401, Some("MissingAuthenticationToken")));
}

#[tokio::test]
async fn zones_come_from_registered_instances_of_the_region() {
    let harness = harness();
    let app = &harness.app;
    crate::ensure_default_cluster(app).await.unwrap();
    let ctx =
        crate::ecs::Ctx::new(app, Caller { access_key: KEY.into(), region: "us-east-1".into() }, SystemTime::now(), 0);
    let register = |zone: &str| {
        json!({"totalResources": [{"name": "CPU", "type": "INTEGER", "integerValue": 1024}],
               "attributes": [{"name": "ecs.availability-zone", "value": zone}]})
    };
    let mut arns = Vec::new();
    for zone in ["us-east-1c", "rack-7"] {
        let input = register(zone).as_object().unwrap().clone();
        let out = crate::ecs::dispatch(&ctx, "RegisterContainerInstance", input).await.unwrap();
        arns.push(out["containerInstance"]["containerInstanceArn"].as_str().unwrap().to_string());
    }
    let describe = |input: Value| {
        let ctx = &ctx;
        async move { crate::ec2::SERVICE.call(ctx, "DescribeAvailabilityZones", input.as_object().unwrap().clone()).await }
    };
    let names = |out: Value| -> Vec<String> {
        out["AvailabilityZones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| z["ZoneName"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(describe(json!({})).await.unwrap()), ["rack-7", "us-east-1a", "us-east-1c"]);
    let picked = describe(json!({"Filters": [{"Name": "zone-name", "Values": ["us-east-1?"]}]})).await.unwrap();
    assert_eq!(names(picked), ["us-east-1a", "us-east-1c"]);
    let picked = describe(json!({"ZoneIds": ["use1-az3"], "Filters": [{"Name": "state", "Values": ["available"]}]}))
        .await
        .unwrap();
    assert_eq!(names(picked), ["us-east-1c"]);
    let none = describe(json!({"Filters": [{"Name": "region-name", "Values": ["eu-west-1"]}]})).await.unwrap();
    assert!(names(none).is_empty());
    let e = describe(json!({"ZoneNames": ["us-east-1b"]})).await.unwrap_err();
    assert_eq!((e.code, e.message.as_str()), ("InvalidParameterValue", "Invalid availability zone: [us-east-1b]"));
    // A deregistered instance's zone is gone; another region sees only its own default zone.
    let input = json!({"containerInstance": arns[1], "force": true}).as_object().unwrap().clone();
    crate::ecs::dispatch(&ctx, "DeregisterContainerInstance", input).await.unwrap();
    assert_eq!(names(describe(json!({})).await.unwrap()), ["us-east-1a", "us-east-1c"]);
    let eu =
        crate::ecs::Ctx::new(app, Caller { access_key: KEY.into(), region: "eu-west-1".into() }, SystemTime::now(), 0);
    let out = crate::ec2::SERVICE.call(&eu, "DescribeAvailabilityZones", Default::default()).await.unwrap();
    assert_eq!(out["AvailabilityZones"][0]["ZoneId"], "euw1-az1");
    assert_eq!(names(out), ["eu-west-1a"]);
}
