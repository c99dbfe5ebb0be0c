//! ECR lifecycle policies: the policy text checked as ECR checks it, the rules evaluated over
//! a repository's images (for a preview, or to expire them), and the periodic sweep.
//!
//! Rules run in priority order (lowest number first). An image selected by a rule's tag
//! filter belongs to that rule, kept or expired; rules of lower priority never see it.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::wildcard;
use crate::error::{RegistryError, Result};
use crate::images::Image;
use crate::{Registry, Scope};

const DAY: f64 = 86_400.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    MoreThan(usize),
    SinceDays(u64),
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub priority: i64,
    pub tag_status: TagStatus,
    pub prefixes: Vec<String>,
    pub patterns: Vec<String>,
    pub count: Count,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Expiry {
    pub image_digest: String,
    pub image_tags: Vec<String>,
    pub image_pushed_at: f64,
    pub applied_rule_priority: i64,
}

fn invalid(why: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: '{why}'"
    ))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Parses and checks a lifecycle policy text.
pub fn parse(text: &str) -> Result<Vec<Rule>> {
    let doc: Value =
        serde_json::from_str(text).map_err(|_| invalid("Lifecycle policy validation failure: not valid JSON"))?;
    let rules = doc
        .get("rules")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| invalid("rules must be a non-empty list"))?;
    let mut out: Vec<Rule> = Vec::new();
    for r in rules {
        let priority = r
            .get("rulePriority")
            .and_then(Value::as_i64)
            .filter(|p| *p >= 1)
            .ok_or_else(|| invalid("rulePriority must be a positive integer"))?;
        if out.iter().any(|o| o.priority == priority) {
            return Err(invalid("rulePriority must be unique"));
        }
        let sel = r.get("selection").ok_or_else(|| invalid("a rule needs a selection"))?;
        let tag_status = match sel.get("tagStatus").and_then(Value::as_str) {
            Some("tagged") => TagStatus::Tagged,
            Some("untagged") => TagStatus::Untagged,
            Some("any") => TagStatus::Any,
            _ => return Err(invalid("tagStatus must be tagged, untagged or any")),
        };
        let prefixes = strings(sel.get("tagPrefixList"));
        let patterns = strings(sel.get("tagPatternList"));
        match tag_status {
            TagStatus::Tagged if prefixes.is_empty() == patterns.is_empty() => {
                return Err(invalid("a tagged selection needs exactly one of tagPrefixList and tagPatternList"));
            }
            TagStatus::Untagged | TagStatus::Any if !prefixes.is_empty() || !patterns.is_empty() => {
                return Err(invalid("tag lists are only for tagStatus tagged"));
            }
            _ => {}
        }
        let number = sel
            .get("countNumber")
            .and_then(Value::as_i64)
            .filter(|n| *n >= 1)
            .ok_or_else(|| invalid("countNumber must be a positive integer"))?;
        let count = match (sel.get("countType").and_then(Value::as_str), sel.get("countUnit").and_then(Value::as_str)) {
            (Some("imageCountMoreThan"), None) => Count::MoreThan(number as usize),
            (Some("sinceImagePushed"), Some("days")) => Count::SinceDays(number as u64),
            _ => {
                return Err(invalid(
                    "countType must be imageCountMoreThan (no countUnit) or sinceImagePushed with countUnit days",
                ));
            }
        };
        if r.get("action").and_then(|a| a.get("type")).and_then(Value::as_str) != Some("expire") {
            return Err(invalid("action type must be expire"));
        }
        out.push(Rule { priority, tag_status, prefixes, patterns, count });
    }
    out.sort_by_key(|r| r.priority);
    if out.iter().rev().skip(1).any(|r| r.tag_status == TagStatus::Any) {
        return Err(invalid("a rule with tagStatus any must have the highest rulePriority"));
    }
    Ok(out)
}

impl Rule {
    fn selects(&self, image: &Image) -> bool {
        let tags = &image.tags;
        match self.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => tags.is_empty(),
            TagStatus::Tagged => {
                self.prefixes.iter().all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
                    && self.patterns.iter().all(|p| tags.iter().any(|t| wildcard(p, t)))
            }
        }
    }
}

/// The images `rules` expire at time `now` (seconds since the epoch).
pub fn evaluate(rules: &[Rule], images: &[Image], now: f64) -> Vec<Expiry> {
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut out = Vec::new();
    for rule in rules {
        let mut selected: Vec<&Image> =
            images.iter().filter(|i| !claimed.contains(i.record.digest.as_str()) && rule.selects(i)).collect();
        selected.sort_by(|a, b| {
            b.record.pushed_at.total_cmp(&a.record.pushed_at).then(a.record.digest.cmp(&b.record.digest))
        });
        for (i, image) in selected.iter().enumerate() {
            claimed.insert(&image.record.digest);
            let expire = match rule.count {
                Count::MoreThan(n) => i >= n,
                Count::SinceDays(days) => image.record.pushed_at < now - days as f64 * DAY,
            };
            if expire {
                let mut tags = image.tags.clone();
                tags.sort();
                out.push(Expiry {
                    image_digest: image.record.digest.clone(),
                    image_tags: tags,
                    image_pushed_at: image.record.pushed_at,
                    applied_rule_priority: rule.priority,
                });
            }
        }
    }
    out
}

/// A preview as stored for GetLifecyclePolicyPreview.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub lifecycle_policy_text: String,
    pub status: String,
    pub results: Vec<Expiry>,
}

impl Registry {
    /// What `text` (or the repository's policy) would expire now; stored as the preview.
    pub async fn preview_lifecycle(&self, scope: &Scope, repo: &str, text: Option<&str>) -> Result<Preview> {
        let (_, record) = self.repository(scope, repo)?;
        let text = match text {
            Some(t) => t.to_string(),
            None => {
                record.lifecycle_policy.clone().ok_or_else(|| RegistryError::LifecyclePolicyNotFound(repo.into()))?
            }
        };
        let rules = parse(&text)?;
        let results = evaluate(&rules, &self.images(scope, repo)?, scope.timestamp());
        let preview = Preview { lifecycle_policy_text: text, status: "COMPLETE".into(), results };
        let txn = berth_store::Txn::new()
            .and_then(vec![berth_store::Op::put(&scope.keys().preview(repo), crate::encode(&preview))]);
        self.store.txn(txn).await?;
        Ok(preview)
    }

    pub fn lifecycle_preview(&self, scope: &Scope, repo: &str) -> Result<Preview> {
        self.repository(scope, repo)?;
        let kv = self
            .store
            .get(&scope.keys().preview(repo))?
            .ok_or_else(|| RegistryError::LifecyclePreviewNotFound(repo.into()))?;
        crate::decode(&kv)
    }

    /// Expires what a repository's lifecycle policy selects; returns what it removed.
    pub async fn apply_lifecycle(&self, scope: &Scope, repo: &str) -> Result<Vec<Expiry>> {
        let (_, record) = self.repository(scope, repo)?;
        let Some(text) = record.lifecycle_policy.as_deref() else {
            return Ok(Vec::new());
        };
        let rules = parse(text)?;
        let expired = evaluate(&rules, &self.images(scope, repo)?, scope.timestamp());
        for e in &expired {
            let digest = crate::uploads::parse_digest(&e.image_digest)?;
            match self.delete_manifest(scope, repo, &digest).await {
                Ok(_) | Err(RegistryError::ManifestUnknown(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let now = scope.timestamp();
        self.update_repository(scope, repo, |r| {
            r.lifecycle_evaluated_at = Some(now);
            Ok(())
        })
        .await?;
        Ok(expired)
    }

    /// Applies every repository's lifecycle policy, in every region with repositories.
    pub async fn sweep_lifecycle(&self, now: std::time::SystemTime) -> Result<usize> {
        let mut expired = 0;
        for region in self.regions()? {
            let scope = Scope { region, caller: crate::Caller::Account { access_key: String::new() }, now };
            for repo in self.list_repositories(&scope)? {
                if repo.lifecycle_policy.is_some() {
                    expired += self.apply_lifecycle(&scope, &repo.name).await?.len();
                }
            }
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManifestRecord;

    fn image(n: u8, pushed_at: f64, tags: &[&str]) -> Image {
        Image {
            record: ManifestRecord {
                digest: format!("sha256:{}", hex::encode([n; 32])),
                media_type: String::new(),
                manifest: String::new(),
                pushed_at,
                last_pull: None,
                blobs: vec![],
                children: vec![],
                subject: None,
                artifact_type: None,
                annotations: None,
                image_size: 0,
            },
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn keeps_the_newest_and_rules_claim_what_they_select() {
        let rules = parse(r#"{"rules":[
            {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
            {"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#).unwrap();
        let images = vec![
            image(1, 100.0, &["prod-1"]),
            image(2, 200.0, &["prod-2"]),
            image(3, 300.0, &["prod-3"]),
            image(4, 400.0, &["dev"]),
            image(5, 500.0, &[]),
        ];
        let out = evaluate(&rules, &images, 1000.0);
        let got: Vec<(u8, i64)> =
            out.iter().map(|e| (hex::decode(&e.image_digest[7..9]).unwrap()[0], e.applied_rule_priority)).collect();
        // prod-1 is the oldest of three prod images; of the rest (dev, untagged) the newest stays.
        assert_eq!(got, [(1, 1), (4, 2)]);
    }

    #[test]
    fn since_pushed_and_patterns() {
        let rules = parse(r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["v*-rc"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#).unwrap();
        let images = vec![image(1, 0.0, &["v1-rc"]), image(2, 0.0, &["v1"]), image(3, 2.0 * DAY, &["v2-rc"])];
        let out = evaluate(&rules, &images, 2.5 * DAY);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].image_tags, ["v1-rc"]);
    }

    #[test]
    fn refuses_what_ecr_refuses() {
        for bad in [
            "nope",
            r#"{"rules":[]}"#,
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countNumber":1},"action":{"type":"expire"}}]}"#,
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":0},"action":{"type":"expire"}}]}"#,
            r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
                         {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
