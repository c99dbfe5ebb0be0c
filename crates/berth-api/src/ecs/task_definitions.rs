//! Task definitions: RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
//! ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions.
//!
//! Each revision is its own record; a per-family counter hands out revision numbers and is
//! kept after deletions, so numbers are never reused. ECS's rules live in
//! `berth_model::task_definition`.

use std::collections::BTreeMap;

use berth_control::definitions::{self, DefinitionRecord, deleting_ops};
use berth_model::arn::task_definition_ref;
use berth_model::task_definition::{self, MAX_SIZE};
use berth_store::{Compare, KeyValue, Op, StoreExt, Txn};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::array;
use super::{
    Ctx, MAX_ATTEMPTS, Obj, check_tags, decode, encode, max_results, page, page_in_order, strings, text, with_token,
};
use crate::error::{ApiError, ApiResult};
use berth_control::store::retry;

#[derive(Debug, Default, Serialize, Deserialize)]
struct FamilyCounter {
    last: u32,
}

fn not_found() -> ApiError {
    ApiError::task_definition_not_found()
}

/// The revision `given` names, if it exists.
pub fn resolve(ctx: &Ctx<'_>, given: &str) -> ApiResult<Option<(KeyValue, DefinitionRecord)>> {
    Ok(definitions::resolve(ctx, given)?)
}

pub async fn register(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    if ctx.body_len > MAX_SIZE {
        return Err(ApiError::client(format!(
            "Task definition is {} bytes; the maximum size of a task definition is 64 KiB.",
            ctx.body_len
        )));
    }
    let tags = array(&input, "tags");
    check_tags(&tags)?;
    let mut definition = task_definition::prepare(&input)?;
    super::placement::constraints(&array(&input, "placementConstraints"), true)?;
    definition.insert("status".into(), json!("ACTIVE"));
    definition.insert("registeredAt".into(), json!(ctx.timestamp()));
    definition.insert("registeredBy".into(), json!(ctx.principal()));
    let family = text(&input, "family").unwrap_or_default().to_string();
    let counter_key = ctx.keys.family(&family);
    let registration = DefinitionRecord { definition, tags };
    ctx.app.registrations.submit(&counter_key, registration, |batch| commit_revisions(ctx, &family, batch)).await
}

/// Gives a batch of registrations of one family consecutive revisions and stores them all
/// in one transaction, guarded by the family's revision counter.
async fn commit_revisions(ctx: &Ctx<'_>, family: &str, batch: Vec<DefinitionRecord>) -> Vec<ApiResult<Value>> {
    let counter_key = ctx.keys.family(family);
    let fail = |e: ApiError| batch.iter().map(|_| Err(e.clone())).collect();
    for _ in 0..MAX_ATTEMPTS {
        let current = match ctx.store().get(&counter_key) {
            Ok(c) => c,
            Err(e) => return fail(e.into()),
        };
        let last = match current.as_ref().map(decode::<FamilyCounter>).transpose() {
            Ok(c) => c.map(|c| c.last).unwrap_or(0),
            Err(e) => return fail(e),
        };
        let (mut ops, mut responses) = (Vec::with_capacity(batch.len() + 1), Vec::with_capacity(batch.len()));
        for (n, registration) in batch.iter().enumerate() {
            let revision = last + 1 + n as u32;
            let mut record = registration.clone();
            record.definition.insert("taskDefinitionArn".into(), json!(ctx.arns.task_definition(family, revision)));
            record.definition.insert("revision".into(), json!(revision));
            ops.push(Op::put(&ctx.keys.task_definition(family, revision), encode(&record)));
            // ECS answers `tags` only when the registration had some.
            let mut response = json!({"taskDefinition": record.definition});
            if !record.tags.is_empty() {
                response["tags"] = Value::Array(record.tags);
            }
            responses.push(response);
        }
        ops.push(Op::put(&counter_key, encode(&FamilyCounter { last: last + batch.len() as u32 })));
        let guard = Compare::unchanged(&counter_key, current.map(|kv| kv.mod_revision).unwrap_or(0));
        match ctx.store().txn(Txn::new().when(vec![guard]).and_then(ops)).await {
            Ok(r) if r.succeeded => return responses.into_iter().map(Ok).collect(),
            Ok(_) => continue,
            Err(e) => return fail(e.into()),
        }
    }
    fail(ApiError::client("Too many concurrent attempts to create a new revision of the specified family."))
}

pub fn describe(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let given = text(&input, "taskDefinition").unwrap_or_default();
    let (_, rec) = resolve(ctx, given)?.ok_or_else(not_found)?;
    let mut out = json!({"taskDefinition": rec.definition});
    if strings(&input, "include").iter().any(|i| i == "TAGS") {
        out["tags"] = Value::Array(rec.tags);
    }
    Ok(out)
}

pub fn list(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let limit = max_results(&input, 100)?;
    let status = text(&input, "status").unwrap_or("ACTIVE");
    let prefix = match text(&input, "familyPrefix") {
        Some(family) => ctx.keys.family_revisions(family),
        None => ctx.keys.task_definitions(),
    };
    let mut items = Vec::new();
    for kv in ctx.store().list(&prefix)? {
        let rec: DefinitionRecord = decode(&kv)?;
        if rec.status() == status {
            // ECS lists by family name, then revision number. Store keys would put "web-api"
            // before "web" ('-' sorts before '/'), so order by (family, NUL, revision).
            let family = rec.definition.get("family").and_then(Value::as_str).unwrap_or_default();
            let revision = rec.definition.get("revision").and_then(Value::as_u64).unwrap_or(0);
            let arn = rec.definition.get("taskDefinitionArn").cloned().unwrap_or_default();
            items.push((format!("{family}\0{revision:010}"), arn));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let descending = text(&input, "sort") == Some("DESC");
    if descending {
        items.reverse();
    }
    let (arns, next) = page_in_order(&input, items, limit, descending)?;
    let mut out = Obj::new();
    out.insert("taskDefinitionArns".into(), Value::Array(arns));
    Ok(with_token(out, next))
}

pub fn list_families(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let limit = max_results(&input, 100)?;
    let status = text(&input, "status").unwrap_or("ALL");
    let prefix = text(&input, "familyPrefix").unwrap_or_default();
    // family -> whether it has an ACTIVE revision
    let mut families: BTreeMap<String, bool> = BTreeMap::new();
    for kv in ctx.store().list(&format!("{}{prefix}", ctx.keys.task_definitions()))? {
        let rec: DefinitionRecord = decode(&kv)?;
        let family = rec.definition.get("family").and_then(Value::as_str).unwrap_or_default().to_string();
        *families.entry(family).or_default() |= rec.status() == "ACTIVE";
    }
    let items = families
        .into_iter()
        .filter(|(_, active)| match status {
            "ACTIVE" => *active,
            "INACTIVE" => !*active,
            _ => true,
        })
        .map(|(family, _)| (family.clone(), json!(family)))
        .collect();
    let (names, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("families".into(), Value::Array(names));
    Ok(with_token(out, next))
}

/// Moves one revision to `status`, stamping `stamp` with the time, together with `also`.
async fn set_status(
    ctx: &Ctx<'_>,
    kv: KeyValue,
    mut rec: DefinitionRecord,
    (status, stamp): (&str, &str),
    also: Vec<Op>,
) -> ApiResult<Option<Obj>> {
    rec.definition.insert("status".into(), json!(status));
    rec.definition.insert(stamp.into(), json!(ctx.timestamp()));
    let mut ops = vec![Op::put(&kv.key, encode(&rec))];
    ops.extend(also);
    let txn = Txn::new().when(vec![Compare::unchanged(&kv.key, kv.mod_revision)]).and_then(ops);
    Ok(ctx.store().txn(txn).await?.succeeded.then_some(rec.definition))
}

pub async fn deregister(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let given = text(&input, "taskDefinition").unwrap_or_default();
    match task_definition_ref(given) {
        Some((_, Some(_))) => {}
        Some((_, None)) if !given.contains(':') || given.starts_with("arn:") => {
            return Err(ApiError::client("Revision is missing."));
        }
        _ => {
            return Err(ApiError::client(format!(
                "Invalid revision number. Number: {}",
                given.rsplit(':').next().unwrap_or_default()
            )));
        }
    }
    retry(move || async move {
        let (kv, rec) = resolve(ctx, given)?.ok_or_else(not_found)?;
        if rec.status() != "ACTIVE" {
            return Ok(Some(json!({"taskDefinition": rec.definition})));
        }
        if let Some(def) = set_status(ctx, kv, rec, ("INACTIVE", "deregisteredAt"), Vec::new()).await? {
            return Ok(Some(json!({"taskDefinition": def})));
        }
        Ok(None)
    })
    .await
}

/// ECS's reasons in DeleteTaskDefinitions `failures`.
const INVALID_IDENTIFIER: &str =
    "The specified task definition identifier is invalid. Specify a valid name or ARN and try again.";
const DOES_NOT_EXIST: &str =
    "The specified task definition does not exist. Specify a valid account, family, revision and try again.";
const STILL_ACTIVE: &str =
    "The specified task definition is still in ACTIVE status. Please deregister the target and try again.";

pub async fn delete(ctx: &Ctx<'_>, input: Obj) -> ApiResult<Value> {
    let wanted = strings(&input, "taskDefinitions");
    if wanted.is_empty() {
        return Err(ApiError::invalid("size of TaskDefinition references list must be greater than 0"));
    }
    if wanted.len() > 10 {
        return Err(ApiError::invalid("Size of TaskDefinition references list cannot exceed 10"));
    }
    let (mut done, mut failures) = (Vec::new(), Vec::new());
    for given in wanted {
        if !matches!(task_definition_ref(&given), Some((_, Some(_)))) {
            failures.push(json!({"arn": given, "reason": INVALID_IDENTIFIER}));
            continue;
        }
        let given = &given;
        // Each revision: deleted (its definition), or a failure entry.
        let outcome = retry(move || async move {
            let Some((kv, rec)) = resolve(ctx, given)? else {
                return Ok(Some(Err(json!({"arn": given, "reason": DOES_NOT_EXIST}))));
            };
            let also = deleting_ops(ctx, &rec.definition);
            match rec.status() {
                "ACTIVE" => {
                    return Ok(Some(Err(json!({"arn": rec.definition["taskDefinitionArn"], "reason": STILL_ACTIVE}))));
                }
                "DELETE_IN_PROGRESS" => {
                    // Indexed again (harmless), for revisions deleted before the index existed.
                    ctx.store().txn(Txn::new().and_then(also)).await?;
                    return Ok(Some(Ok(Value::Object(rec.definition))));
                }
                _ => {}
            }
            let changed = set_status(ctx, kv, rec, ("DELETE_IN_PROGRESS", "deleteRequestedAt"), also).await?;
            Ok::<_, ApiError>(changed.map(|def| Ok(Value::Object(def))))
        })
        .await?;
        match outcome {
            Ok(def) => done.push(def),
            Err(failure) => failures.push(failure),
        }
    }
    Ok(json!({"taskDefinitions": done, "failures": failures}))
}
