//! ListImageReferrers: the artifacts whose `subject` is an image, as the `/v2/` referrers
//! API lists them (every artifact is `ACTIVE`: Berth does not archive images).

use berth_registry::Digest;
use serde_json::{Value, json};

use super::authorized;
use super::errors::{EcrResult, invalid_at};
use crate::ecs::{Ctx, Obj, max_results, page, strings, with_token};

pub fn list(ctx: &Ctx<'_>, input: Obj) -> EcrResult<Value> {
    let (name, s, _) = authorized(ctx, &input, "ecr:BatchGetImage")?;
    let raw = input.get("subjectId").and_then(|i| i.get("imageDigest")).and_then(Value::as_str).unwrap_or_default();
    let digest: Digest =
        raw.parse().map_err(|_| invalid_at("subjectId.imageDigest", &format!("'{raw}' is not an image digest")))?;
    let filter = input.get("filter").and_then(Value::as_object).cloned().unwrap_or_default();
    let types = strings(&filter, "artifactTypes");
    let status = filter.get("artifactStatus").and_then(Value::as_str).unwrap_or("ACTIVE");
    let limit = max_results(&input, 50)?;
    let mut items = Vec::new();
    if matches!(status, "ACTIVE" | "ANY") {
        for mut r in ctx.app.registry.referrers(&s, &name, &digest, None)? {
            let kind = r.get("artifactType").and_then(Value::as_str).unwrap_or_default();
            if !types.is_empty() && !types.iter().any(|t| t == kind) {
                continue;
            }
            r["artifactStatus"] = json!("ACTIVE");
            let key = r["digest"].as_str().unwrap_or_default().to_string();
            items.push((key, r));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let (referrers, next) = page(&input, items, limit)?;
    let mut out = Obj::new();
    out.insert("referrers".into(), json!(referrers));
    Ok(with_token(out, next))
}
