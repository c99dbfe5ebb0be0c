//! GetAuthorizationToken (the registry password docker and skopeo log in with) and
//! DescribeRegistry (with the replication configuration).

use berth_registry::Tokens;
use serde_json::{Value, json};

use super::errors::EcrResult;
use crate::ecs::{Ctx, epoch_seconds};

pub fn get_token(ctx: &Ctx<'_>) -> EcrResult<Value> {
    let registry = &ctx.app.registry;
    let (password, expires) = registry.tokens.issue(&ctx.caller.access_key, &ctx.caller.region, ctx.now);
    Ok(json!({"authorizationData": [{
        "authorizationToken": Tokens::authorization_token(&password),
        "expiresAt": epoch_seconds(expires),
        "proxyEndpoint": format!("http://{}", registry.options.host),
    }]}))
}

pub fn describe_registry(ctx: &Ctx<'_>) -> EcrResult<Value> {
    let replication = ctx.app.registry.replication_configuration(&super::scope(ctx))?;
    Ok(json!({"registryId": ctx.config().account, "replicationConfiguration": replication}))
}
