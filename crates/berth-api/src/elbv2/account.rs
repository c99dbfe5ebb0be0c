//! DescribeAccountLimits: the quotas Berth enforces, under ELB's names.

use berth_control::elb::limits::ACCOUNT_LIMITS;
use serde_json::{Value, json};

use super::page;
use crate::ecs::Obj;
use crate::error::ApiResult;

pub fn limits(input: Obj) -> ApiResult<Value> {
    let items = ACCOUNT_LIMITS
        .iter()
        .map(|(name, max)| (name.to_string(), json!({"Name": name, "Max": max.to_string()})))
        .collect();
    page(&input, items, "Limits")
}
