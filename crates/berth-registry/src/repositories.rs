//! Repositories: create, read, change under compare-and-swap, delete (with everything in
//! them), and the repository name rules ECR and the distribution spec share.

use berth_store::{Compare, KeyValue, Op, StoreExt, Txn};
use serde_json::{Value, json};

use crate::error::{RegistryError, Result};
use crate::{MAX_ATTEMPTS, Registry, Repository, Scope, decode, encode};

/// ECR's name rule: lower-case components joined by `.`, `_`, `__` or dashes, separated by
/// `/`; 2 to 256 characters.
pub fn valid_name(name: &str) -> bool {
    (2..=256).contains(&name.len()) && name.split('/').all(valid_component)
}

/// Runs of lower-case letters and digits, separated by `.`, `_`, `__` or one or more `-`.
pub(crate) fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let run = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == run {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[sep..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
}

/// What CreateRepository (or create-on-push) asks for.
#[derive(Debug, Clone)]
pub struct NewRepository {
    pub name: String,
    pub image_tag_mutability: String,
    pub exclusion_filters: Vec<Value>,
    pub scan_on_push: bool,
    pub encryption: Value,
    pub tags: Vec<Value>,
    /// A repository policy to start with (a creation template's).
    pub policy: Option<String>,
    /// A lifecycle policy to start with (a creation template's).
    pub lifecycle_policy: Option<String>,
}

impl NewRepository {
    pub fn named(name: &str) -> Self {
        NewRepository {
            name: name.to_string(),
            image_tag_mutability: "MUTABLE".into(),
            exclusion_filters: Vec::new(),
            scan_on_push: false,
            encryption: json!({"encryptionType": "AES256"}),
            tags: Vec::new(),
            policy: None,
            lifecycle_policy: None,
        }
    }
}

impl Registry {
    pub async fn create_repository(&self, scope: &Scope, new: NewRepository) -> Result<Repository> {
        if !valid_name(&new.name) {
            return Err(RegistryError::NameInvalid(new.name));
        }
        let repo = Repository {
            name: new.name.clone(),
            created_at: scope.timestamp(),
            image_tag_mutability: new.image_tag_mutability,
            exclusion_filters: new.exclusion_filters,
            scan_on_push: new.scan_on_push,
            encryption: new.encryption,
            tags: new.tags,
            policy: new.policy,
            lifecycle_policy: new.lifecycle_policy,
            lifecycle_evaluated_at: None,
        };
        let key = scope.keys().repository(&new.name);
        let txn = Txn::new()
            .when(vec![Compare::absent(&key)])
            .and_then(vec![Op::put(&key, encode(&repo)), Op::put(&crate::keys::region(&scope.region), Vec::new())]);
        if !self.store.txn(txn).await?.succeeded {
            return Err(RegistryError::RepositoryExists(new.name));
        }
        Ok(repo)
    }

    pub fn repository(&self, scope: &Scope, name: &str) -> Result<(KeyValue, Repository)> {
        let kv = self
            .store
            .get(&scope.keys().repository(name))?
            .ok_or_else(|| RegistryError::RepositoryNotFound(name.to_string()))?;
        let repo = decode(&kv)?;
        Ok((kv, repo))
    }

    /// The repository a push goes to. A missing one is created, as ECR's create-on-push does,
    /// when `--registry-create-on-push` is on or a `CREATE_ON_PUSH` template covers the name
    /// (the template then sets it up), and the caller may create repositories.
    pub async fn repository_for_push(&self, scope: &Scope, name: &str) -> Result<(KeyValue, Repository)> {
        match self.repository(scope, name) {
            Err(RegistryError::RepositoryNotFound(_)) => {
                let templated = self.template_for(scope, name, "CREATE_ON_PUSH")?.is_some();
                if !(self.options.create_on_push || templated) {
                    return Err(RegistryError::RepositoryNotFound(name.to_string()));
                }
                self.create_for(scope, name, "CREATE_ON_PUSH").await
            }
            other => other,
        }
    }

    /// Creates the repository `name` for `scenario` (set up by its creation template) after
    /// checking the caller may create repositories; a concurrent creation is fine.
    pub(crate) async fn create_for(&self, scope: &Scope, name: &str, scenario: &str) -> Result<(KeyValue, Repository)> {
        if !valid_name(name) {
            return Err(RegistryError::NameInvalid(name.to_string()));
        }
        self.authorize_registry(scope, "ecr:CreateRepository")?;
        match self.create_repository(scope, self.new_repository_for(scope, name, scenario)?).await {
            Ok(_) | Err(RegistryError::RepositoryExists(_)) => self.repository(scope, name),
            Err(e) => Err(e),
        }
    }

    pub fn list_repositories(&self, scope: &Scope) -> Result<Vec<Repository>> {
        self.store.list(&scope.keys().repositories())?.iter().map(decode).collect()
    }

    /// Applies `edit` to a repository record under compare-and-swap.
    pub async fn update_repository(
        &self,
        scope: &Scope,
        name: &str,
        edit: impl Fn(&mut Repository) -> Result<()>,
    ) -> Result<Repository> {
        for _ in 0..MAX_ATTEMPTS {
            let (kv, mut repo) = self.repository(scope, name)?;
            edit(&mut repo)?;
            let txn = Txn::new()
                .when(vec![Compare::unchanged(&kv.key, kv.mod_revision)])
                .and_then(vec![Op::put(&kv.key, encode(&repo))]);
            if self.store.txn(txn).await?.succeeded {
                return Ok(repo);
            }
        }
        Err(RegistryError::Contention(name.to_string()))
    }

    /// Deletes a repository; one holding images only with `force`, and then its images too.
    pub async fn delete_repository(&self, scope: &Scope, name: &str, force: bool) -> Result<Repository> {
        let keys = scope.keys();
        for _ in 0..MAX_ATTEMPTS {
            let (kv, repo) = self.repository(scope, name)?;
            let revision = self.store.revision()?;
            let manifests = self.store.list(&keys.manifests(name))?;
            if !manifests.is_empty() && !force {
                return Err(RegistryError::RepositoryNotEmpty(name.to_string()));
            }
            let txn = Txn::new()
                .when(vec![
                    Compare::unchanged(&kv.key, kv.mod_revision),
                    Compare::prefix_unchanged_since(&keys.manifests(name), revision),
                ])
                .and_then(vec![
                    Op::delete(&kv.key),
                    Op::delete_prefix(&keys.manifests(name)),
                    Op::delete_prefix(&keys.tags(name)),
                    Op::delete_prefix(&keys.links(name)),
                    Op::delete_prefix(&keys.replications(name)),
                    Op::delete(&keys.preview(name)),
                ]);
            if self.store.txn(txn).await?.succeeded {
                return Ok(repo);
            }
        }
        Err(RegistryError::Contention(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn names_follow_the_ecr_pattern() {
        for ok in ["web", "team/web", "a1", "my-repo", "my--repo", "a.b", "a_b", "a__b", "x/y/z"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["a", "Web", "-web", "web-", "a//b", "/a", "a/", "a..b", "a___b", "a b", "a:b", &"a".repeat(257)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn create_describe_delete() {
        let f = testing::registry();
        let s = testing::scope();
        f.registry.create_repository(&s, NewRepository::named("team/web")).await.unwrap();
        assert!(matches!(
            f.registry.create_repository(&s, NewRepository::named("team/web")).await,
            Err(RegistryError::RepositoryExists(_))
        ));
        assert!(matches!(
            f.registry.create_repository(&s, NewRepository::named("Team")).await,
            Err(RegistryError::NameInvalid(_))
        ));
        f.registry.create_repository(&s, NewRepository::named("team")).await.unwrap();
        let names: Vec<_> = f.registry.list_repositories(&s).unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["team", "team/web"]);
        f.registry.delete_repository(&s, "team", false).await.unwrap();
        assert!(f.registry.repository(&s, "team/web").is_ok(), "a prefix name is another repository");
        let other = Scope { region: "eu-west-1".into(), ..testing::scope() };
        assert!(f.registry.list_repositories(&other).unwrap().is_empty(), "regions are separate");
    }
}
