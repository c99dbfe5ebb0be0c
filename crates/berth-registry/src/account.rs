//! ECR account settings (Get/PutAccountSetting), per registry: the names and values ECR's
//! model documents. `BLOB_MOUNTING` acts (a `DISABLED` registry answers cross-repository
//! mount requests with an ordinary upload); the other two have one value each.

use crate::error::{RegistryError, Result};
use crate::{Registry, Scope};

/// Each setting: its name, the values it takes, and its value until one is put.
const SETTINGS: &[(&str, &[&str], &str)] = &[
    ("BASIC_SCAN_TYPE_VERSION", &["AWS_NATIVE"], "AWS_NATIVE"),
    ("REGISTRY_POLICY_SCOPE", &["V2"], "V2"),
    ("BLOB_MOUNTING", &["ENABLED", "DISABLED"], "ENABLED"),
];

fn setting(name: &str) -> Result<&'static (&'static str, &'static [&'static str], &'static str)> {
    SETTINGS.iter().find(|(n, _, _)| *n == name).ok_or_else(|| {
        let names: Vec<&str> = SETTINGS.iter().map(|(n, _, _)| *n).collect();
        RegistryError::InvalidParameter(format!(
            "Invalid parameter at 'name' failed to satisfy constraint: 'Member must satisfy enum value set: [{}]'",
            names.join(", ")
        ))
    })
}

fn key(name: &str) -> String {
    format!("setting/{name}")
}

impl Registry {
    /// The value of the account setting `name`.
    pub fn account_setting(&self, scope: &Scope, name: &str) -> Result<String> {
        let (_, _, default) = setting(name)?;
        let stored = self.read_record::<String>(&scope.keys().registry(&key(name)))?;
        Ok(stored.map(|(_, v)| v).unwrap_or_else(|| default.to_string()))
    }

    /// Sets an account setting to one of the values it takes.
    pub async fn put_account_setting(&self, scope: &Scope, name: &str, value: &str) -> Result<()> {
        let (_, values, _) = setting(name)?;
        if !values.contains(&value) {
            return Err(RegistryError::InvalidParameter(format!(
                "Invalid parameter at 'value' failed to satisfy constraint: 'Member must satisfy enum value set: [{}]'",
                values.join(", ")
            )));
        }
        let value = value.to_string();
        self.edit_record::<String, _>(&scope.keys().registry(&key(name)), |_| Ok((Some(value.clone()), ()))).await
    }

    /// Whether cross-repository blob mounts are served in the scope's registry.
    pub fn blob_mounting(&self, scope: &Scope) -> Result<bool> {
        Ok(self.account_setting(scope, "BLOB_MOUNTING")? == "ENABLED")
    }
}

#[cfg(test)]
mod tests {
    use crate::{RegistryError, testing};

    #[tokio::test]
    async fn settings_have_defaults_and_take_only_their_values() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        assert_eq!(r.account_setting(&s, "REGISTRY_POLICY_SCOPE").unwrap(), "V2");
        assert!(r.blob_mounting(&s).unwrap());
        r.put_account_setting(&s, "BLOB_MOUNTING", "DISABLED").await.unwrap();
        assert!(!r.blob_mounting(&s).unwrap());
        assert!(matches!(
            r.put_account_setting(&s, "BLOB_MOUNTING", "MAYBE").await,
            Err(RegistryError::InvalidParameter(_))
        ));
        assert!(matches!(r.account_setting(&s, "COLOUR"), Err(RegistryError::InvalidParameter(_))));
    }
}
