//! A region's availability zones: where its machines are. The `ecs.availability-zone`
//! attribute of every registered (not INACTIVE) container instance of the region, plus the
//! zone the local agent gets by default (the region and `a`). Zone ids are Berth's own, stable
//! per name: `use1-az1` for `us-east-1a` (letter → number), `use1-NAME` for other names.

use std::collections::BTreeSet;

use berth_store::StoreExt;
use serde_json::Value;

use crate::Region;
use crate::error::ControlResult;
use crate::records::{InstanceRecord, InstanceStatus};
use crate::store::decode;

/// The zone the local agent of `berth up` is in unless told otherwise.
pub fn default_zone(region: &str) -> String {
    format!("{region}a")
}

/// The zones of the region, by name.
pub fn zone_names(region: &Region<'_>) -> ControlResult<BTreeSet<String>> {
    let mut zones = BTreeSet::from([default_zone(&region.name)]);
    for cluster in region.store().list(&region.keys.clusters())? {
        let name = cluster.key.rsplit('/').next().unwrap_or_default();
        for kv in region.store().list(&region.keys.instances(name))? {
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

/// A zone's id.
pub fn zone_id(region: &str, zone: &str) -> String {
    let code = region_code(region);
    match zone.strip_prefix(region).map(|s| s.as_bytes()) {
        Some([letter @ b'a'..=b'z']) => format!("{code}-az{}", letter - b'a' + 1),
        _ => format!("{code}-{zone}"),
    }
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
}
