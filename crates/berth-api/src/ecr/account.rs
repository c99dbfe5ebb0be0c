//! GetAccountSetting and PutAccountSetting (see `berth_registry::account`).

use serde_json::{Value, json};

use super::errors::EcrResult;
use super::scope;
use crate::ecs::{Ctx, Obj, text};

pub fn get(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let name = text(&input, "name").unwrap_or_default();
    let value = ctx.app.registry.account_setting(&scope(ctx), name)?;
    Ok(json!({"name": name, "value": value}))
}

pub async fn put(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let (name, value) = (text(&input, "name").unwrap_or_default(), text(&input, "value").unwrap_or_default());
    ctx.app.registry.put_account_setting(&scope(ctx), name, value).await?;
    Ok(json!({"name": name, "value": value}))
}
