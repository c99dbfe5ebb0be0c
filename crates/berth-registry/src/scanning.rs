//! The registry's scanning configuration (Put/GetRegistryScanningConfiguration) and what it
//! means for each repository (BatchGetRepositoryScanningConfiguration). Berth stores and
//! reports it; images are not scanned yet.

use serde::{Deserialize, Serialize};

use crate::access::wildcard;
use crate::error::{RegistryError, Result};
use crate::{Registry, Repository, Scope};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    pub filter: String,
    pub filter_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub scan_frequency: String,
    pub repository_filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Configuration {
    pub scan_type: String,
    pub rules: Vec<Rule>,
}

impl Default for Configuration {
    fn default() -> Self {
        Configuration { scan_type: "BASIC".into(), rules: Vec::new() }
    }
}

/// How one repository is scanned under the registry's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub scan_frequency: String,
    pub applied_filters: Vec<Filter>,
    pub scan_on_push: bool,
}

fn invalid(why: String) -> RegistryError {
    RegistryError::InvalidParameter(format!("Invalid parameter at 'rules' failed to satisfy constraint: '{why}'"))
}

/// ECR's filter pattern `^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$`: runs of lower-case
/// letters, digits and `*`, joined by at most one of `._-/`.
pub fn valid_filter(filter: &str) -> bool {
    let word = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '*';
    let separator = |c: char| matches!(c, '.' | '_' | '-' | '/');
    let chars: Vec<char> = filter.chars().collect();
    let (Some(first), Some(last)) = (chars.first(), chars.last()) else { return false };
    word(*first)
        && word(*last)
        && chars.iter().all(|c| word(*c) || separator(*c))
        && chars.windows(2).all(|w| word(w[0]) || word(w[1]))
}

impl Configuration {
    /// Checks a configuration as PutRegistryScanningConfiguration must.
    pub fn check(&self) -> Result<()> {
        for rule in &self.rules {
            if rule.scan_frequency == "CONTINUOUS_SCAN" && self.scan_type == "BASIC" {
                return Err(invalid("CONTINUOUS_SCAN needs scanType ENHANCED".into()));
            }
            if rule.repository_filters.is_empty() {
                return Err(invalid("a rule needs at least one repository filter".into()));
            }
            if let Some(f) = rule.repository_filters.iter().find(|f| !valid_filter(&f.filter)) {
                return Err(invalid(format!(
                    "repository filter '{}' must satisfy regular expression '^[a-z0-9*](?:[._\\-/a-z0-9*]?[a-z0-9*]+)*$'",
                    f.filter
                )));
            }
        }
        Ok(())
    }

    /// How `repo` is scanned: the rule whose filters match it, continuous scanning first, then
    /// scan on push, then manual; without a match, the repository's own scan-on-push flag.
    pub fn effective(&self, repo: &Repository) -> Effective {
        let rank = |f: &str| match f {
            "CONTINUOUS_SCAN" => 0,
            "SCAN_ON_PUSH" => 1,
            _ => 2,
        };
        let mut matching: Vec<(&Rule, Vec<Filter>)> = self
            .rules
            .iter()
            .map(|r| (r, r.repository_filters.iter().filter(|f| wildcard(&f.filter, &repo.name)).cloned().collect()))
            .filter(|(_, filters): &(&Rule, Vec<Filter>)| !filters.is_empty())
            .collect();
        matching.sort_by_key(|(r, _)| rank(&r.scan_frequency));
        match matching.into_iter().next() {
            Some((rule, applied_filters)) => Effective {
                scan_on_push: rule.scan_frequency != "MANUAL" || repo.scan_on_push,
                scan_frequency: rule.scan_frequency.clone(),
                applied_filters,
            },
            None => Effective {
                scan_frequency: if repo.scan_on_push { "SCAN_ON_PUSH" } else { "MANUAL" }.into(),
                applied_filters: Vec::new(),
                scan_on_push: repo.scan_on_push,
            },
        }
    }
}

impl Registry {
    pub fn scanning_configuration(&self, scope: &Scope) -> Result<Configuration> {
        Ok(self.read_record(&scope.keys().registry("scanning"))?.map(|(_, c)| c).unwrap_or_default())
    }

    pub async fn put_scanning_configuration(&self, scope: &Scope, config: Configuration) -> Result<()> {
        config.check()?;
        self.edit_record(&scope.keys().registry("scanning"), |_: Option<Configuration>| Ok((Some(config.clone()), ())))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repositories::NewRepository;
    use crate::testing;

    fn rule(frequency: &str, filters: &[&str]) -> Rule {
        Rule {
            scan_frequency: frequency.into(),
            repository_filters: filters
                .iter()
                .map(|f| Filter { filter: f.to_string(), filter_type: "WILDCARD".into() })
                .collect(),
        }
    }

    #[test]
    fn filters_follow_ecrs_pattern() {
        for ok in ["web", "prod-*", "*", "team/web*", "a.b_c"] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["", "Web", "-web", "web-", "a--b", "a b", "a/"] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn each_repository_gets_the_strongest_matching_rule() {
        let f = testing::registry();
        let (r, s) = (&f.registry, testing::scope());
        let web = r.create_repository(&s, NewRepository::named("prod-web")).await.unwrap();
        let dev = r.create_repository(&s, NewRepository::named("dev")).await.unwrap();
        let config = Configuration {
            scan_type: "ENHANCED".into(),
            rules: vec![rule("SCAN_ON_PUSH", &["*"]), rule("CONTINUOUS_SCAN", &["prod-*"])],
        };
        r.put_scanning_configuration(&s, config).await.unwrap();
        let config = r.scanning_configuration(&s).unwrap();
        let e = config.effective(&web);
        assert_eq!((e.scan_frequency.as_str(), e.applied_filters[0].filter.as_str()), ("CONTINUOUS_SCAN", "prod-*"));
        assert_eq!(config.effective(&dev).scan_frequency, "SCAN_ON_PUSH");
        let basic = Configuration { scan_type: "BASIC".into(), rules: vec![rule("CONTINUOUS_SCAN", &["*"])] };
        assert!(r.put_scanning_configuration(&s, basic).await.is_err());
        assert_eq!(Configuration::default().effective(&dev).scan_frequency, "MANUAL");
    }
}
