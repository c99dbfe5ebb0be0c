//! The registry policy: one IAM-style document per registry (account and region). Like a
//! repository policy it can deny key holders actions or allow anonymous callers some, on
//! every repository of the registry and on creating repositories (the V2 policy scope:
//! every ECR action).

use crate::error::{RegistryError, Result};
use crate::{Registry, Scope, access};

const POLICY: &str = "policy";

impl Registry {
    /// The registry policy text, if one is set.
    pub fn registry_policy(&self, scope: &Scope) -> Result<Option<String>> {
        Ok(self.read_record::<String>(&scope.keys().registry(POLICY))?.map(|(_, text)| text))
    }

    /// Sets the registry policy after checking it.
    pub async fn put_registry_policy(&self, scope: &Scope, text: &str) -> Result<()> {
        access::parse_registry_policy(text)?;
        let text = text.to_string();
        self.edit_record::<String, _>(&scope.keys().registry(POLICY), |_| Ok((Some(text.clone()), ()))).await
    }

    /// Removes the registry policy; returns the text it had.
    pub async fn delete_registry_policy(&self, scope: &Scope) -> Result<String> {
        self.remove_record(&scope.keys().registry(POLICY), || RegistryError::RegistryPolicyNotFound).await
    }
}

#[cfg(test)]
mod tests {
    use crate::repositories::NewRepository;
    use crate::{Caller, RegistryError, Scope, testing};

    #[tokio::test]
    async fn a_registry_policy_governs_every_repository_of_its_region() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        assert!(matches!(r.delete_registry_policy(&s).await, Err(RegistryError::RegistryPolicyNotFound)));
        let repo = r.create_repository(&s, NewRepository::named("web")).await.unwrap();
        let deny =
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}]}"#;
        r.put_registry_policy(&s, deny).await.unwrap();
        assert!(matches!(r.authorize(&s, &repo, "ecr:PutImage"), Err(RegistryError::Denied { .. })));
        assert!(r.authorize(&s, &repo, "ecr:BatchGetImage").is_ok());
        let other =
            Scope { region: "eu-west-1".into(), caller: Caller::Account { access_key: "A".into() }, now: s.now };
        assert!(r.authorize(&other, &repo, "ecr:PutImage").is_ok(), "another region's registry");
        assert_eq!(r.delete_registry_policy(&s).await.unwrap(), deny);
        assert!(r.authorize(&s, &repo, "ecr:PutImage").is_ok());
    }
}
