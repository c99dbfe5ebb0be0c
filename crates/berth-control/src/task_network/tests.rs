//! The task side of the VPC model over a real store: requests checked as ECS checks them, an
//! ENI shown on its task, marked attached, released with the task's stop, and what the agent
//! is told.

use berth_store::Txn;
use serde_json::json;

use super::*;
use crate::vpc::testing::TestRegion;
use crate::vpc::{cidr, subnets, vpcs};

fn refusal(mode: &str, configuration: serde_json::Value) -> String {
    parse(mode, Some(&configuration), LaunchType::Ec2).unwrap_err().0
}

#[test]
fn network_configuration_is_required_with_awsvpc_and_refused_without() {
    assert_eq!(
        parse("awsvpc", None, LaunchType::Ec2).unwrap_err().0,
        "Network Configuration must be provided when networkMode 'awsvpc' is specified."
    );
    let given = json!({"awsvpcConfiguration": {"subnets": ["subnet-1"]}});
    assert!(refusal("bridge", given.clone()).contains("not valid for the given networkMode"));
    assert_eq!(parse("bridge", None, LaunchType::Ec2).unwrap(), None);
    assert_eq!(parse("host", Some(&serde_json::Value::Null), LaunchType::Fargate).unwrap(), None);
    let ok = parse(
        "awsvpc",
        Some(&json!({"awsvpcConfiguration":
        {"subnets": ["subnet-1"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}})),
        LaunchType::Fargate,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        ok,
        NetworkRequest {
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
            assign_public_ip: false
        }
    );
    assert_eq!(refusal("awsvpc", json!({})), "Network Configuration must contain an awsvpcConfiguration.");
    assert_eq!(refusal("awsvpc", json!({"awsvpcConfiguration": {"subnets": []}})), "subnets can not be empty.");
    let many: Vec<String> = (0..17).map(|n| format!("subnet-{n}")).collect();
    assert!(refusal("awsvpc", json!({"awsvpcConfiguration": {"subnets": many}})).contains("at most 16"));
    let groups: Vec<String> = (0..6).map(|n| format!("sg-{n}")).collect();
    assert!(
        refusal("awsvpc", json!({"awsvpcConfiguration": {"subnets": ["s"], "securityGroups": groups}}))
            .contains("at most 5")
    );
    assert_eq!(
        refusal("awsvpc", json!({"awsvpcConfiguration": {"subnets": ["s"], "assignPublicIp": "ENABLED"}})),
        "Assign public IP is not supported for this launch type."
    );
    let public = json!({"awsvpcConfiguration": {"subnets": ["s"], "assignPublicIp": "ENABLED"}});
    let fargate = parse("awsvpc", Some(&public), LaunchType::Fargate).unwrap().unwrap();
    assert!(fargate.assign_public_ip);
    assert!(
        refusal("awsvpc", json!({"awsvpcConfiguration": {"subnets": ["s"], "assignPublicIp": "yes"}}))
            .contains("'yes'")
    );
    assert!(refusal("awsvpc", json!({"awsvpcConfiguration": {"subnets": "s"}})).contains("list of strings"));
}

async fn subnet(region: &Region<'_>) -> String {
    let vpc = vpcs::create(region, cidr::parse("10.9.0.0/24").unwrap(), vec![]).await.unwrap();
    let block = subnets::Block::Given(cidr::parse("10.9.0.16/28").unwrap());
    let new = subnets::NewSubnet {
        vpc_id: &vpc.id,
        block,
        zone: "us-east-1a",
        default_for_az: false,
        tags: vec![],
        marker: None,
    };
    subnets::insert(region, new).await.unwrap().unwrap().id
}

#[tokio::test]
async fn unknown_subnets_and_groups_are_refused_with_ecs_wording() {
    let t = TestRegion::new();
    let r = t.region();
    let id = subnet(&r).await;
    let req = |subnets: &[&str], groups: &[&str]| NetworkRequest {
        subnets: subnets.iter().map(|s| s.to_string()).collect(),
        security_groups: groups.iter().map(|s| s.to_string()).collect(),
        assign_public_ip: false,
    };
    assert_eq!(check(&r, &req(&[&id], &[])).unwrap(), Ok(()));
    let missing = check(&r, &req(&["subnet-0123456789abcdef0"], &[])).unwrap().unwrap_err().0;
    assert!(missing.starts_with("Error retrieving subnet information for [subnet-0123456789abcdef0]: "), "{missing}");
    let group = check(&r, &req(&[&id], &["sg-0123456789abcdef0"])).unwrap().unwrap_err().0;
    assert!(group.starts_with("Error retrieving security group information for [sg-0123456789abcdef0]: "), "{group}");
}

#[tokio::test]
async fn an_eni_is_shown_attached_told_to_the_agent_and_released_with_its_task() {
    let t = TestRegion::new();
    let r = t.region();
    let id = subnet(&r).await;
    let req = NetworkRequest { subnets: vec![id.clone()], security_groups: vec![], assign_public_ip: false };
    let (eni, compares, ops) =
        allocate(&r, &req, ("arn:aws:ecs:us-east-1:000000000000:task/c/t1", &Obj::new()), &[]).unwrap();
    assert!(r.store().txn(Txn::new().when(compares).and_then(ops)).await.unwrap().succeeded);
    // A second one of the same transaction never takes the same address.
    let (other, ..) =
        allocate(&r, &req, ("arn:aws:ecs:us-east-1:000000000000:task/c/t2", &Obj::new()), std::slice::from_ref(&eni))
            .unwrap();
    assert_ne!(other.private_ip, eni.private_ip);

    let mut task: Obj = serde_json::from_value(json!({"containers": [{"name": "web"}, {"name": "side"}]})).unwrap();
    show(&r, &mut task, &eni);
    let a = &task["attachments"][0];
    assert_eq!((a["type"].as_str(), a["status"].as_str()), (Some("ElasticNetworkInterface"), Some("PRECREATED")));
    let details: Vec<(&str, &str)> = a["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d["value"].as_str().unwrap()))
        .collect();
    let ip = eni.private_ip.to_string();
    assert_eq!(
        details,
        [
            ("subnetId", id.as_str()),
            ("networkInterfaceId", eni.id.as_str()),
            ("macAddress", eni.mac.as_str()),
            ("privateDnsName", eni.private_dns_name.as_str()),
            ("privateIPv4Address", ip.as_str()),
        ]
    );
    for c in task["containers"].as_array().unwrap() {
        assert_eq!(c["networkInterfaces"], json!([{"attachmentId": a["id"], "privateIpv4Address": ip}]));
    }
    attached(&mut task);
    assert_eq!(task["attachments"][0]["status"], "ATTACHED");

    let told = assigned_network(&r, task.get("attachments")).unwrap().unwrap();
    let network: berth_agent_protocol_shape::TaskNetwork = serde_json::from_value(told).unwrap();
    assert_eq!(network.eni, eni);
    assert!(network.rules.egress.iter().any(|rule| rule.cidrs == ["0.0.0.0/0"]), "the default group's egress");

    let (compares, ops) = release(&r, &mut task).unwrap();
    assert!(r.store().txn(Txn::new().when(compares).and_then(ops)).await.unwrap().succeeded);
    assert_eq!(task["attachments"][0]["status"], "DELETED");
    assert_eq!(eni_id(&task), None);
    assert!(assigned_network(&r, task.get("attachments")).unwrap().is_none());
    assert!(crate::vpc::enis::list(&r).unwrap().is_empty(), "the interface is gone");
    assert_eq!(release(&r, &mut task).unwrap(), (vec![], vec![]), "released once");
}

/// The agent's side of `berthNetwork`, as the control plane's own types.
mod berth_agent_protocol_shape {
    #[derive(serde::Deserialize)]
    pub struct TaskNetwork {
        pub eni: crate::vpc::Eni,
        pub rules: crate::vpc::EffectiveRules,
    }
}
