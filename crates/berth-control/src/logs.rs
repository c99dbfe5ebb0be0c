//! CloudWatch Logs resources as records: log groups (retention, class, tags) and their log
//! streams, each one store key. Their events are not records: they live in `berth-logs`'
//! segments, in a directory named by the group's [`LogGroup::id`], so a group deleted and
//! made again under its name never sees the old group's events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::keys::Keys;

/// The retention periods CloudWatch Logs accepts, in days.
pub const RETENTION_DAYS: &[u32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogGroup {
    pub name: String,
    /// Names the group's event directory; new for every group made.
    pub id: String,
    /// Milliseconds since the epoch.
    pub creation_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_in_days: Option<u32>,
    /// `STANDARD`, `INFREQUENT_ACCESS` or `DELIVERY`.
    pub log_group_class: String,
    #[serde(default)]
    pub deletion_protection: bool,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogStream {
    pub name: String,
    /// Milliseconds since the epoch.
    pub creation_time: i64,
}

pub use berth_model::names::valid_log_group_name as valid_group_name;

/// Whether `name` is a valid log stream name: 1-512 characters, no `:` or `*`.
pub fn valid_stream_name(name: &str) -> bool {
    (1..=512).contains(&name.chars().count()) && !name.contains([':', '*'])
}

/// The log groups of every region (`REGION/NAME` beneath).
pub const LOG_GROUPS: &str = "logs/group/";

impl Keys {
    pub fn log_groups(&self) -> String {
        format!("{LOG_GROUPS}{}/", self.region)
    }

    /// A log group, keyed by its name (so groups list in name order).
    pub fn log_group(&self, name: &str) -> String {
        format!("{LOG_GROUPS}{}/{name}", self.region)
    }

    /// The streams of the group whose id is `group_id`.
    pub fn log_streams(&self, group_id: &str) -> String {
        format!("logs/stream/{}/{group_id}/", self.region)
    }

    pub fn log_stream(&self, group_id: &str, name: &str) -> String {
        format!("logs/stream/{}/{group_id}/{name}", self.region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cloudwatch_rules() {
        for ok in ["/ecs/web", "a", "my-group_1.x#2", &"g".repeat(512)] {
            assert!(valid_group_name(ok), "{ok}");
        }
        for bad in ["", "aws/lambda", "with space", "colon:", &"g".repeat(513)] {
            assert!(!valid_group_name(bad), "{bad}");
        }
        assert!(valid_stream_name("web/web/0123abcd"));
        assert!(valid_stream_name("with space é"));
        assert!(!valid_stream_name("a:b"));
        assert!(!valid_stream_name("a*"));
        assert!(!valid_stream_name(""));
    }

    #[test]
    fn keys_keep_groups_in_name_order_and_streams_under_their_group() {
        let k = Keys::new("us-east-1");
        assert!(k.log_group("/a").starts_with(&k.log_groups()));
        assert!(k.log_group("/a") < k.log_group("/b"));
        assert!(k.log_stream("g1", "s").starts_with(&k.log_streams("g1")));
        assert!(!k.log_stream("g10", "s").starts_with(&k.log_streams("g1")));
    }
}
