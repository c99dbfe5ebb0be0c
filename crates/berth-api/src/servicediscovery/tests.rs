//! Cloud Map in-process, through the JSON reading of the model, over a real store: the life
//! of a namespace, service and instances, what each answer looks like, filters and paging,
//! and bad input refused with Cloud Map's names, changing nothing.

use serde_json::{Value, json};

use super::SERVICE;
use crate::testing::{Harness, REGION};

async fn sd(h: &Harness, op: &str, input: Value) -> Value {
    h.call_json(&SERVICE, op, input).await.unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

async fn refused(h: &Harness, op: &str, input: Value) -> (String, String) {
    h.call_json(&SERVICE, op, input).await.expect_err(op)
}

async fn vpc(h: &Harness) -> String {
    let region = h.app.control.region(REGION);
    berth_control::vpc::defaults::ensure(&region).await.unwrap().unwrap().id
}

/// A private DNS namespace `internal.app` and a MULTIVALUE A+SRV service `backend` in it.
async fn backend(h: &Harness) -> (String, String) {
    let vpc = vpc(h).await;
    let op = sd(h, "CreatePrivateDnsNamespace", json!({"Name": "internal.app", "Vpc": vpc})).await;
    let op = sd(h, "GetOperation", json!({"OperationId": op["OperationId"]})).await;
    assert_eq!(op["Operation"]["Status"], "SUCCESS");
    assert_eq!(op["Operation"]["Type"], "CREATE_NAMESPACE");
    let ns = op["Operation"]["Targets"]["NAMESPACE"].as_str().unwrap().to_string();
    let svc = sd(
        h,
        "CreateService",
        json!({"Name": "backend", "NamespaceId": ns, "HealthCheckCustomConfig": {"FailureThreshold": 1},
               "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 10}, {"Type": "SRV", "TTL": 20}]}}),
    )
    .await;
    (ns, svc["Service"]["Id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_namespace_a_service_and_its_instances() {
    let h = Harness::new();
    let (ns, svc) = backend(&h).await;
    let got = sd(&h, "GetNamespace", json!({"Id": ns})).await["Namespace"].clone();
    assert_eq!(got["Type"], "DNS_PRIVATE");
    assert_eq!(got["ServiceCount"], 1);
    assert_eq!(got["Properties"]["HttpProperties"]["HttpName"], "internal.app");
    assert_eq!(got["Properties"]["DnsProperties"]["SOA"]["TTL"], 15);
    assert!(got["Arn"].as_str().unwrap().ends_with(&format!(":namespace/{ns}")));

    let service = sd(&h, "GetService", json!({"Id": svc})).await["Service"].clone();
    assert_eq!(service["Type"], "DNS_HTTP");
    assert_eq!(service["DnsConfig"]["RoutingPolicy"], "MULTIVALUE");
    assert_eq!(service["HealthCheckCustomConfig"]["FailureThreshold"], 1);

    for (id, ip) in [("t1", "10.0.0.1"), ("t2", "10.0.0.2")] {
        let attributes = json!({"AWS_INSTANCE_IPV4": ip, "AWS_INSTANCE_PORT": "8080", "color": "blue"});
        let op =
            sd(&h, "RegisterInstance", json!({"ServiceId": svc, "InstanceId": id, "Attributes": attributes})).await;
        let op = sd(&h, "GetOperation", json!({"OperationId": op["OperationId"]})).await["Operation"].clone();
        assert_eq!((op["Type"].as_str(), op["Status"].as_str()), (Some("REGISTER_INSTANCE"), Some("SUCCESS")));
        assert_eq!(op["Targets"]["INSTANCE"], id);
    }
    let one = sd(&h, "GetInstance", json!({"ServiceId": svc, "InstanceId": "t1"})).await;
    assert_eq!(one["Instance"]["Attributes"]["AWS_INSTANCE_IPV4"], "10.0.0.1");
    let listed = sd(&h, "ListInstances", json!({"ServiceId": svc, "MaxResults": 1})).await;
    assert_eq!(listed["Instances"].as_array().unwrap().len(), 1);
    let rest = sd(&h, "ListInstances", json!({"ServiceId": svc, "NextToken": listed["NextToken"]})).await;
    assert_eq!(rest["Instances"][0]["Id"], "t2");
    assert!(rest.get("NextToken").is_none());

    sd(&h, "UpdateInstanceCustomHealthStatus", json!({"ServiceId": svc, "InstanceId": "t2", "Status": "UNHEALTHY"}))
        .await;
    let health = sd(&h, "GetInstancesHealthStatus", json!({"ServiceId": svc})).await;
    assert_eq!(health["Status"], json!({"t1": "HEALTHY", "t2": "UNHEALTHY"}));
    let found = sd(&h, "DiscoverInstances", json!({"NamespaceName": "internal.app", "ServiceName": "backend"})).await;
    assert_eq!(found["Instances"].as_array().unwrap().len(), 1, "healthy ones by default");
    assert_eq!(found["Instances"][0]["InstanceId"], "t1");
    assert_eq!(found["Instances"][0]["NamespaceName"], "internal.app");
    let all = sd(
        &h,
        "DiscoverInstances",
        json!({"NamespaceName": "internal.app", "ServiceName": "backend", "HealthStatus": "ALL", "QueryParameters": {"color": "blue"}}),
    )
    .await;
    assert_eq!(all["Instances"].as_array().unwrap().len(), 2);
    let rev =
        sd(&h, "DiscoverInstancesRevision", json!({"NamespaceName": "internal.app", "ServiceName": "backend"})).await;
    assert_eq!(rev["InstancesRevision"], all["InstancesRevision"]);

    sd(&h, "DeregisterInstance", json!({"ServiceId": svc, "InstanceId": "t1"})).await;
    sd(&h, "DeregisterInstance", json!({"ServiceId": svc, "InstanceId": "t2"})).await;
    sd(&h, "DeleteService", json!({"Id": svc})).await;
    let op = sd(&h, "DeleteNamespace", json!({"Id": ns})).await;
    let ops = sd(&h, "ListOperations", json!({"Filters": [{"Name": "TYPE", "Values": ["DEREGISTER_INSTANCE"]}]})).await;
    assert_eq!(ops["Operations"].as_array().unwrap().len(), 2);
    let ops = sd(&h, "ListOperations", json!({"Filters": [{"Name": "NAMESPACE_ID", "Values": [ns]}]})).await;
    assert_eq!(ops["Operations"].as_array().unwrap().last().unwrap()["Id"], op["OperationId"]);
}

#[tokio::test]
async fn bad_input_is_refused_in_cloud_maps_words_and_changes_nothing() {
    let h = Harness::new();
    let (ns, svc) = backend(&h).await;
    let cases = [
        ("CreatePrivateDnsNamespace", json!({"Name": "x.app"}), "InvalidInput"),
        ("CreatePrivateDnsNamespace", json!({"Name": "internal.app", "Vpc": vpc(&h).await}), "NamespaceAlreadyExists"),
        ("CreatePublicDnsNamespace", json!({"Name": "example.com"}), "InvalidInput"),
        ("UpdatePublicDnsNamespace", json!({"Id": ns, "Namespace": {"Description": "x"}}), "InvalidInput"),
        ("GetNamespace", json!({"Id": "ns-doesnotexist00"}), "NamespaceNotFound"),
        ("DeleteNamespace", json!({"Id": ns}), "ResourceInUse"),
        ("CreateService", json!({"Name": "web"}), "InvalidInput"),
        (
            "CreateService",
            json!({"Name": "web", "NamespaceId": ns, "HealthCheckConfig": {"Type": "HTTP"}}),
            "InvalidInput",
        ),
        ("CreateService", json!({"Name": "backend", "NamespaceId": ns}), "ServiceAlreadyExists"),
        (
            "CreateService",
            json!({"Name": "web", "NamespaceId": ns, "DnsConfig": {"DnsRecords": [{"Type": "MX", "TTL": 1}]}}),
            "InvalidInput",
        ),
        ("GetService", json!({"Id": "srv-doesnotexist0"}), "ServiceNotFound"),
        (
            "RegisterInstance",
            json!({"ServiceId": svc, "InstanceId": "t1", "Attributes": {"AWS_INSTANCE_PORT": "80"}}),
            "InvalidInput",
        ),
        ("RegisterInstance", json!({"ServiceId": svc, "InstanceId": "t1"}), "InvalidInput"),
        ("GetInstance", json!({"ServiceId": svc, "InstanceId": "nope"}), "InstanceNotFound"),
        ("GetInstancesHealthStatus", json!({"ServiceId": svc, "Instances": ["nope"]}), "InstanceNotFound"),
        ("GetOperation", json!({"OperationId": "nope"}), "OperationNotFound"),
        (
            "ListNamespaces",
            json!({"Filters": [{"Name": "TYPE", "Values": ["HTTP", "DNS_PRIVATE"], "Condition": "EQ"}]}),
            "InvalidInput",
        ),
        (
            "ListOperations",
            json!({"Filters": [{"Name": "UPDATE_DATE", "Values": ["1"], "Condition": "BETWEEN"}]}),
            "InvalidInput",
        ),
        ("DiscoverInstances", json!({"NamespaceName": "nope.app", "ServiceName": "backend"}), "NamespaceNotFound"),
        ("DiscoverInstances", json!({"NamespaceName": "internal.app", "ServiceName": "nope"}), "ServiceNotFound"),
        (
            "TagResource",
            json!({"ResourceARN": "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-x", "Tags": []}),
            "ResourceNotFoundException",
        ),
    ];
    for (op, input, code) in cases {
        assert_eq!(refused(&h, op, input.clone()).await.0, code, "{op} {input}");
    }
    let (code, _) = refused(&h, "CreateHttpNamespace", json!({"Name": 7})).await;
    assert_eq!(code, "SerializationException");
    let none = sd(&h, "ListInstances", json!({"ServiceId": svc})).await;
    assert!(none["Instances"].as_array().unwrap().is_empty());
    assert_eq!(sd(&h, "ListNamespaces", json!({})).await["Namespaces"].as_array().unwrap().len(), 1);
    assert_eq!(sd(&h, "ListServices", json!({})).await["Services"].as_array().unwrap().len(), 1);
    // A service without custom health: its instances' health cannot be set.
    let plain = sd(&h, "CreateService", json!({"Name": "plain", "NamespaceId": ns})).await["Service"]["Id"].clone();
    sd(&h, "RegisterInstance", json!({"ServiceId": plain, "InstanceId": "p1", "Attributes": {}})).await;
    let e = refused(
        &h,
        "UpdateInstanceCustomHealthStatus",
        json!({"ServiceId": plain, "InstanceId": "p1", "Status": "HEALTHY"}),
    )
    .await;
    assert_eq!(e.0, "CustomHealthNotFound");
    assert_eq!(sd(&h, "GetInstancesHealthStatus", json!({"ServiceId": plain})).await["Status"]["p1"], "UNKNOWN");
}

#[tokio::test]
async fn lists_filter_and_tags_stick() {
    let h = Harness::new();
    let (ns, _) = backend(&h).await;
    let shop = sd(&h, "CreateHttpNamespace", json!({"Name": "shop", "Tags": [{"Key": "team", "Value": "a"}]})).await;
    let shop =
        sd(&h, "GetOperation", json!({"OperationId": shop["OperationId"]})).await["Operation"]["Targets"]["NAMESPACE"]
            .clone();
    let names = |v: &Value| -> Vec<String> {
        v["Namespaces"].as_array().unwrap().iter().map(|n| n["Name"].as_str().unwrap().to_string()).collect()
    };
    let http = sd(&h, "ListNamespaces", json!({"Filters": [{"Name": "TYPE", "Values": ["HTTP"]}]})).await;
    assert_eq!(names(&http), ["shop"]);
    let both = sd(
        &h,
        "ListNamespaces",
        json!({"Filters": [{"Name": "TYPE", "Values": ["HTTP", "DNS_PRIVATE"], "Condition": "IN"}]}),
    )
    .await;
    assert_eq!(both["Namespaces"].as_array().unwrap().len(), 2);
    let prefix = sd(
        &h,
        "ListNamespaces",
        json!({"Filters": [{"Name": "NAME", "Values": ["inter"], "Condition": "BEGINS_WITH"}]}),
    )
    .await;
    assert_eq!(names(&prefix), ["internal.app"]);
    let others =
        sd(&h, "ListNamespaces", json!({"Filters": [{"Name": "RESOURCE_OWNER", "Values": ["OTHER_ACCOUNTS"]}]})).await;
    assert!(names(&others).is_empty());
    let page = sd(&h, "ListNamespaces", json!({"MaxResults": 1})).await;
    let next = sd(&h, "ListNamespaces", json!({"MaxResults": 1, "NextToken": page["NextToken"]})).await;
    assert_ne!(names(&page), names(&next));

    sd(&h, "CreateService", json!({"Name": "cart", "NamespaceId": shop})).await;
    let in_shop = sd(&h, "ListServices", json!({"Filters": [{"Name": "NAMESPACE_ID", "Values": [shop]}]})).await;
    assert_eq!(in_shop["Services"].as_array().unwrap().len(), 1);
    assert_eq!(in_shop["Services"][0]["Name"], "cart");
    let in_dns =
        sd(&h, "ListServices", json!({"Filters": [{"Name": "NAMESPACE_ID", "Values": [ns], "Condition": "EQ"}]})).await;
    assert_eq!(in_dns["Services"][0]["Name"], "backend");

    let arn = sd(&h, "GetNamespace", json!({"Id": shop})).await["Namespace"]["Arn"].clone();
    assert_eq!(
        sd(&h, "ListTagsForResource", json!({"ResourceARN": arn})).await["Tags"],
        json!([{"Key": "team", "Value": "a"}])
    );
    sd(&h, "TagResource", json!({"ResourceARN": arn, "Tags": [{"Key": "env", "Value": "dev"}]})).await;
    sd(&h, "UntagResource", json!({"ResourceARN": arn, "TagKeys": ["team"]})).await;
    assert_eq!(
        sd(&h, "ListTagsForResource", json!({"ResourceARN": arn})).await["Tags"],
        json!([{"Key": "env", "Value": "dev"}])
    );
    let many: Vec<Value> = (0..50).map(|i| json!({"Key": format!("k{i}"), "Value": "v"})).collect();
    assert_eq!(refused(&h, "TagResource", json!({"ResourceARN": arn, "Tags": many})).await.0, "TooManyTagsException");
}
