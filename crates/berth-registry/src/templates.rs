//! Repository creation templates: the settings of repositories the registry creates itself
//! (on push, for a pull-through cache, for replication). A template applies to repositories
//! under its prefix (`prod` covers `prod/...`); `ROOT` covers every name no other template
//! covers. Templates are stored as ECR describes them.

use berth_store::StoreExt;
use serde_json::{Value, json};

use crate::error::{RegistryError, Result};
use crate::repositories::NewRepository;
use crate::{Registry, Scope, decode};

/// The prefix that covers every repository.
pub const ROOT: &str = "ROOT";

/// A prefix as stored and compared: without its trailing `/`.
pub fn normalize(prefix: &str) -> &str {
    if prefix == ROOT { prefix } else { prefix.trim_end_matches('/') }
}

/// ECR's prefix rule: `ROOT`, or repository name components with an optional trailing `/`.
pub fn valid_prefix(prefix: &str) -> bool {
    let p = prefix.strip_suffix('/').unwrap_or(prefix);
    prefix == ROOT || (!p.is_empty() && p.split('/').all(crate::repositories::valid_component))
}

/// Of `prefixes`, the one that covers `name`: the longest `p` with `name` under `p/`, else
/// `ROOT` when it is one of them.
pub fn covering<'a>(name: &str, prefixes: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut root = None;
    let mut best: Option<&str> = None;
    for p in prefixes {
        if p == ROOT {
            root = Some(p);
        } else if name.strip_prefix(normalize(p)).is_some_and(|rest| rest.starts_with('/'))
            && best.is_none_or(|b| normalize(b).len() < normalize(p).len())
        {
            best = Some(p);
        }
    }
    best.or(root)
}

fn prefix_of(template: &Value) -> &str {
    template.get("prefix").and_then(Value::as_str).unwrap_or_default()
}

fn text(template: &Value, key: &str) -> Option<String> {
    template.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string)
}

impl Registry {
    pub fn templates(&self, scope: &Scope) -> Result<Vec<Value>> {
        self.store.list(&scope.keys().templates())?.iter().map(decode).collect()
    }

    /// Stores a new template (its `prefix` names it).
    pub async fn create_template(&self, scope: &Scope, template: Value) -> Result<Value> {
        let prefix = prefix_of(&template).to_string();
        self.edit_record(&scope.keys().template(normalize(&prefix)), |current: Option<Value>| match current {
            Some(_) => Err(RegistryError::TemplateExists(prefix.clone())),
            None => Ok((Some(template.clone()), template.clone())),
        })
        .await
    }

    /// Changes the template of `prefix` with `edit`; returns it changed.
    pub async fn update_template(
        &self,
        scope: &Scope,
        prefix: &str,
        edit: impl Fn(&mut Value) -> Result<()>,
    ) -> Result<Value> {
        let missing = || RegistryError::TemplateNotFound(prefix.to_string());
        self.update_record(&scope.keys().template(normalize(prefix)), missing, edit).await
    }

    pub async fn delete_template(&self, scope: &Scope, prefix: &str) -> Result<Value> {
        let missing = || RegistryError::TemplateNotFound(prefix.to_string());
        self.remove_record(&scope.keys().template(normalize(prefix)), missing).await
    }

    /// The template for a repository `name` created for `scenario` (`CREATE_ON_PUSH`,
    /// `PULL_THROUGH_CACHE` or `REPLICATION`).
    pub fn template_for(&self, scope: &Scope, name: &str, scenario: &str) -> Result<Option<Value>> {
        let applies =
            |t: &Value| t.get("appliedFor").and_then(Value::as_array).is_some_and(|a| a.iter().any(|s| s == scenario));
        let candidates: Vec<Value> = self.templates(scope)?.into_iter().filter(applies).collect();
        let chosen = covering(name, candidates.iter().map(prefix_of)).map(str::to_string);
        Ok(chosen.and_then(|p| candidates.into_iter().find(|t| prefix_of(t) == p)))
    }

    /// How a repository `name` created for `scenario` is set up: by its template, or with
    /// ECR's defaults when none applies.
    pub fn new_repository_for(&self, scope: &Scope, name: &str, scenario: &str) -> Result<NewRepository> {
        let mut new = NewRepository::named(name);
        let Some(t) = self.template_for(scope, name, scenario)? else {
            return Ok(new);
        };
        if let Some(m) = text(&t, "imageTagMutability") {
            new.image_tag_mutability = m;
        }
        let list = |key: &str| t.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
        new.exclusion_filters = list("imageTagMutabilityExclusionFilters");
        new.tags = list("resourceTags");
        new.encryption =
            t.get("encryptionConfiguration").cloned().unwrap_or_else(|| json!({"encryptionType": "AES256"}));
        new.policy = text(&t, "repositoryPolicy");
        new.lifecycle_policy = text(&t, "lifecyclePolicy");
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn the_longest_prefix_covers_a_name_and_root_the_rest() {
        let prefixes = ["ROOT", "prod", "prod/web/", "dev"];
        assert_eq!(covering("prod/web/api", prefixes), Some("prod/web/"));
        assert_eq!(covering("prod/db", prefixes), Some("prod"));
        assert_eq!(covering("production", prefixes), Some("ROOT"), "a prefix covers whole components");
        assert_eq!(covering("prod", prefixes), Some("ROOT"), "a prefix covers what is under it");
        assert_eq!(covering("other", ["dev"]), None);
        for ok in ["ROOT", "prod", "prod/", "a", "team/web"] {
            assert!(valid_prefix(ok), "{ok}");
        }
        for bad in ["", "/", "Prod", "prod//", "-x"] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn templates_set_up_the_repositories_of_their_scenario() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        let template = json!({"prefix": "prod/", "appliedFor": ["CREATE_ON_PUSH"], "imageTagMutability": "IMMUTABLE",
            "resourceTags": [{"Key": "team", "Value": "a"}], "repositoryPolicy": "{}"});
        r.create_template(&s, template.clone()).await.unwrap();
        assert!(matches!(
            r.create_template(&s, json!({"prefix": "prod"})).await,
            Err(RegistryError::TemplateExists(_))
        ));
        let new = r.new_repository_for(&s, "prod/web", "CREATE_ON_PUSH").unwrap();
        assert_eq!(
            (new.image_tag_mutability.as_str(), new.tags.len(), new.policy.as_deref()),
            ("IMMUTABLE", 1, Some("{}"))
        );
        assert_eq!(r.new_repository_for(&s, "prod/web", "REPLICATION").unwrap().image_tag_mutability, "MUTABLE");
        r.update_template(&s, "prod", |t| {
            t["appliedFor"] = json!(["REPLICATION"]);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(r.new_repository_for(&s, "prod/web", "REPLICATION").unwrap().image_tag_mutability, "IMMUTABLE");
        assert_eq!(prefix_of(&r.delete_template(&s, "prod/").await.unwrap()), "prod/");
        assert!(matches!(r.delete_template(&s, "prod").await, Err(RegistryError::TemplateNotFound(_))));
    }
}
