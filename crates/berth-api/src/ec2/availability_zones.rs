//! Availability zones: DescribeAvailabilityZones.
//!
//! A region's zones are where its machines are (`berth_control::vpc::zones`: the
//! `ecs.availability-zone` attribute of every registered container instance, plus the local
//! agent's default zone). Every zone is an available availability zone that needs no opt-in.
//! Zone ids are Berth's own, stable per name: `use1-az1` for `us-east-1a`.

use berth_control::vpc::zones::{zone_id, zone_names};
use serde_json::{Value, json};

use super::filters;
use crate::ecs::{Ctx, Obj, strings};
use crate::error::{ApiError, ApiResult};

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
    let zones: Vec<Value> = zone_names(&ctx.region)?.iter().map(|name| zone(region, name)).collect();
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
    fn filter_fields_come_from_the_zone() {
        let z = zone("us-east-1", "us-east-1b");
        assert_eq!(field(&z, "zone-name"), ["us-east-1b"]);
        assert_eq!(field(&z, "zone-id"), ["use1-az2"]);
        assert_eq!(field(&z, "state"), ["available"]);
        assert!(field(&z, "parent-zone-id").is_empty());
        assert!(field(&z, "message").is_empty());
    }
}
