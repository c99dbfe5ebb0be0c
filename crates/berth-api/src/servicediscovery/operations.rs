//! Operations: GetOperation, and ListOperations with its filters (namespace, service, status,
//! type, and a window of update dates).

use berth_control::discovery::OperationRecord;
use berth_control::discovery::operations as domain;
use serde_json::{Value, json};

use super::{Filter, SdResult, filters, invalid, max_results, page};
use crate::ecs::{Ctx, Obj, text};

fn json(ctx: &Ctx<'_>, op: &OperationRecord) -> Value {
    let mut out = json!({
        "Id": op.id, "OwnerAccount": ctx.config().account, "Type": op.kind.as_str(), "Status": op.status.as_str(),
        "CreateDate": op.created, "UpdateDate": op.updated, "Targets": op.targets,
    });
    if let Some(code) = &op.error_code {
        out["ErrorCode"] = json!(code);
    }
    if let Some(message) = &op.error_message {
        out["ErrorMessage"] = json!(message);
    }
    out
}

pub fn get(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    if let Some(owner) = text(&input, "OwnerAccount")
        && owner != ctx.config().account
    {
        let id = text(&input, "OperationId").unwrap_or_default();
        return Err(berth_control::discovery::DiscoveryError::OperationNotFound(id.to_string()).into());
    }
    let op = domain::get(&ctx.region, text(&input, "OperationId").unwrap_or_default())?;
    Ok(json!({"Operation": json(ctx, &op)}))
}

/// A date of the `UPDATE_DATE` filter: seconds since the epoch, or RFC 3339.
fn date(value: &str) -> SdResult<f64> {
    if let Ok(seconds) = value.parse::<f64>() {
        return Ok(seconds);
    }
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
        .map_err(|_| {
            invalid(format!("UPDATE_DATE value '{value}' is not a date (seconds since the epoch, or RFC 3339)."))
        })
}

fn keep(f: &Filter, ops: &mut Vec<OperationRecord>) -> SdResult<()> {
    match f.name.as_str() {
        "NAMESPACE_ID" | "SERVICE_ID" => {
            f.check(&["EQ"])?;
            let target = if f.name == "NAMESPACE_ID" { "NAMESPACE" } else { "SERVICE" };
            ops.retain(|o| o.targets.get(target).is_some_and(|v| f.passes(v)));
        }
        "STATUS" => {
            f.check(&["EQ", "IN"])?;
            ops.retain(|o| f.passes(o.status.as_str()));
        }
        "TYPE" => {
            f.check(&["EQ", "IN"])?;
            ops.retain(|o| f.passes(o.kind.as_str()));
        }
        "UPDATE_DATE" => {
            f.check(&["BETWEEN"])?;
            let [from, to] = f.values.as_slice() else {
                return Err(invalid("UPDATE_DATE with BETWEEN takes two values: the start and the end."));
            };
            let (from, to) = (date(from)?, date(to)?);
            ops.retain(|o| o.updated >= from && o.updated <= to);
        }
        other => return Err(invalid(format!("Unknown operation filter {other}."))),
    }
    Ok(())
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> SdResult<Value> {
    let mut ops = domain::list(&ctx.region)?;
    for f in filters(&input)? {
        keep(&f, &mut ops)?;
    }
    let items = ops
        .iter()
        .map(|o| (format!("{:020.3}/{}", o.created, o.id), json!({"Id": o.id, "Status": o.status.as_str()})))
        .collect();
    page(&input, "Operations", items, max_results(&input, 100))
}
