//! Availability zones: DescribeAvailabilityZones.
//!
//! A region's zones are where its machines are: the `ecs.availability-zone` attribute of
//! every registered (not INACTIVE) container instance of the caller's region, plus the zone
//! the local agent gets by default (the region and `a`). Every zone is an available
//! availability zone that needs no opt-in. Zone ids are Berth's own, stable per name:
//! `use1-az1` for `us-east-1a` (letter → number), `use1-NAME` for other names.

use std::collections::BTreeSet;

use berth_store::StoreExt;
use serde_json::{Value, json};

use super::filters;
use crate::ecs::{Ctx, Obj, decode, strings};
use crate::error::{ApiError, ApiResult};
use berth_control::records::{InstanceRecord, InstanceStatus};

/// The filters EC2 documents for DescribeAvailabilityZones.
const FILTERS: &[&str] = &[
    "group-long-name",
    "group-name",
    "message",
    "opt-in-status",
    "parent-zone-id",
    "parent-zone-name",
    "region-name",
    "state",
    "zone-id",
    "zone-name",
    "zone-type",
];

/// The short form of a region in zone ids: `us-east-1` → `use1`, `ap-southeast-2` → `apse2`.
fn region_code(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return region.to_string();
    };
    let short = |word: &&str| match *word {
        "northeast" => "ne".to_string(),
        "northwest" => "nw".to_string(),
        "southeast" => "se".to_string(),
        "southwest" => "sw".to_string(),
        w => w.chars().take(1).collect(),
    };
    format!("{first}{}{last}", middle.iter().map(short).collect::<String>())
}

fn zone_id(region: &str, zone: &str) -> String {
    let code = region_code(region);
    match zone.strip_prefix(region).map(|s| s.as_bytes()) {
        Some([letter @ b'a'..=b'z']) => format!("{code}-az{}", letter - b'a' + 1),
        _ => format!("{code}-{zone}"),
    }
}

/// The zones of the caller's region, by name.
fn zone_names(ctx: &Ctx<'_>) -> ApiResult<BTreeSet<String>> {
    let mut zones = BTreeSet::from([format!("{}a", ctx.caller.region)]);
    for cluster in ctx.store().list(&ctx.keys.clusters())? {
        let name = cluster.key.rsplit('/').next().unwrap_or_default();
        for kv in ctx.store().list(&ctx.keys.instances(name))? {
            let rec: InstanceRecord = decode(&kv)?;
            if rec.status == InstanceStatus::Inactive {
                continue;
            }
            let attributes = rec.instance.get("attributes").and_then(Value::as_array);
            let zone = attributes
                .into_iter()
                .flatten()
                .find(|a| a.get("name").and_then(Value::as_str) == Some("ecs.availability-zone"))
                .and_then(|a| a.get("value").and_then(Value::as_str));
            zones.extend(zone.map(str::to_string));
        }
    }
    Ok(zones)
}

fn zone(region: &str, name: &str) -> Value {
    json!({
        "ZoneName": name,
        "ZoneId": zone_id(region, name),
        "State": "available",
        "OptInStatus": "opt-in-not-required",
        "Messages": [],
        "RegionName": region,
        "GroupName": format!("{region}-zg-1"),
        "NetworkBorderGroup": region,
        "ZoneType": "availability-zone",
    })
}

/// A zone's values for a filter name.
fn field(zone: &Value, filter: &str) -> Vec<String> {
    let member = match filter {
        "group-name" => "GroupName",
        "group-long-name" => "GroupLongName",
        "opt-in-status" => "OptInStatus",
        "parent-zone-id" => "ParentZoneId",
        "parent-zone-name" => "ParentZoneName",
        "region-name" => "RegionName",
        "state" => "State",
        "zone-id" => "ZoneId",
        "zone-name" => "ZoneName",
        "zone-type" => "ZoneType",
        "message" => {
            let messages = zone["Messages"].as_array().into_iter().flatten();
            return messages.filter_map(|m| m["Message"].as_str().map(str::to_string)).collect();
        }
        _ => return Vec::new(),
    };
    zone[member].as_str().map(str::to_string).into_iter().collect()
}

/// `AllAvailabilityZones` changes nothing: every zone is an availability zone that needs no
/// opt-in, so every zone is listed either way.
pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let region = ctx.caller.region.as_str();
    let filters = filters::parse(&input, FILTERS)?;
    let names = strings(&input, "ZoneNames");
    let ids = strings(&input, "ZoneIds");
    let zones: Vec<Value> = zone_names(ctx)?.iter().map(|name| zone(region, name)).collect();
    let has = |member: &str, wanted: &String| zones.iter().any(|z| z[member].as_str() == Some(wanted));
    if let Some(unknown) = names.iter().find(|n| !has("ZoneName", n)) {
        return Err(ApiError::new(400, "InvalidParameterValue", format!("Invalid availability zone: [{unknown}]")));
    }
    if let Some(unknown) = ids.iter().find(|i| !has("ZoneId", i)) {
        return Err(ApiError::new(400, "InvalidParameterValue", format!("Invalid availability zone ID: [{unknown}]")));
    }
    let picked = |z: &Value, member: &str, wanted: &[String]| {
        wanted.is_empty() || wanted.iter().any(|w| z[member].as_str() == Some(w))
    };
    let listed: Vec<Value> = zones
        .into_iter()
        .filter(|z| picked(z, "ZoneName", &names) && picked(z, "ZoneId", &ids))
        .filter(|z| filters::matches(&filters, |f| field(z, f)))
        .collect();
    Ok(json!({ "AvailabilityZones": listed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_follow_the_region_and_letter() {
        assert_eq!(zone_id("us-east-1", "us-east-1a"), "use1-az1");
        assert_eq!(zone_id("us-east-1", "us-east-1c"), "use1-az3");
        assert_eq!(zone_id("ap-southeast-2", "ap-southeast-2b"), "apse2-az2");
        assert_eq!(zone_id("eu-central-1", "eu-central-1a"), "euc1-az1");
        assert_eq!(zone_id("us-east-1", "rack-7"), "use1-rack-7");
        assert_eq!(zone_id("local", "locala"), "local-az1");
    }

    #[test]
    fn filter_fields_come_from_the_zone() {
        let z = zone("us-east-1", "us-east-1b");
        assert_eq!(field(&z, "zone-name"), ["us-east-1b"]);
        assert_eq!(field(&z, "zone-id"), ["use1-az2"]);
        assert_eq!(field(&z, "state"), ["available"]);
        assert!(field(&z, "parent-zone-id").is_empty());
        assert!(field(&z, "message").is_empty());
    }
}
