//! Which store a server keeps its state in (`--store`): the embedded file in the data dir, or
//! an etcd cluster that several servers share; and opening it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use berth_store::{Embedded, EmbeddedOptions, Etcd, EtcdOptions, EtcdTls, Store};

/// `--store` and the etcd options, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// `state.redb` in the data dir (the default).
    Embedded,
    Etcd(EtcdSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSettings {
    /// Client URLs, `http://` or, with a CA, `https://`.
    pub endpoints: Vec<String>,
    pub namespace: String,
    pub user: Option<(String, String)>,
    pub ca: Option<PathBuf>,
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// The etcd flags as given (`--etcd-*`).
#[derive(Debug, Clone, Default)]
pub struct EtcdFlags {
    pub namespace: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl StoreSettings {
    /// Parses `embedded` or `etcd://HOST:PORT[,HOST:PORT...]`.
    pub fn parse(store: Option<&str>, flags: EtcdFlags) -> anyhow::Result<Self> {
        let raw = store.unwrap_or("embedded");
        let etcd_flag_given = flags.namespace.is_some()
            || flags.user.is_some()
            || flags.password.is_some()
            || flags.ca.is_some()
            || flags.cert.is_some()
            || flags.key.is_some();
        if raw == "embedded" {
            if etcd_flag_given {
                bail!("--etcd-* options need --store etcd://HOST:PORT[,HOST:PORT...]");
            }
            return Ok(StoreSettings::Embedded);
        }
        let Some(hosts) = raw.strip_prefix("etcd://") else {
            bail!("--store {raw}: expected `embedded` or etcd://HOST:PORT[,HOST:PORT...]");
        };
        let scheme = if flags.ca.is_some() { "https" } else { "http" };
        let mut endpoints = Vec::new();
        for host in hosts.split(',') {
            let ok = host.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                bail!("--store {raw}: `{host}` is not HOST:PORT");
            }
            endpoints.push(format!("{scheme}://{host}"));
        }
        let namespace = flags.namespace.unwrap_or_else(|| "berth/".to_string());
        if namespace.is_empty() || namespace.chars().any(|c| c.is_control()) {
            bail!("--etcd-namespace {namespace:?}: give a non-empty key prefix such as berth/");
        }
        let user = match (flags.user, flags.password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            _ => bail!("--etcd-user and --etcd-password go together"),
        };
        let identity = match (flags.cert, flags.key) {
            (Some(c), Some(k)) if flags.ca.is_some() => Some((c, k)),
            (None, None) => None,
            (Some(_), Some(_)) => bail!("--etcd-cert and --etcd-key need --etcd-ca (TLS to etcd)"),
            _ => bail!("--etcd-cert and --etcd-key go together"),
        };
        Ok(StoreSettings::Etcd(EtcdSettings { endpoints, namespace, user, ca: flags.ca, identity }))
    }

    /// Where the state is, for the start-up lines.
    pub fn describe(&self, data_dir: &Path) -> String {
        match self {
            StoreSettings::Embedded => data_dir.join("state.redb").display().to_string(),
            StoreSettings::Etcd(e) => format!("etcd {} under {}", e.endpoints.join(","), e.namespace),
        }
    }

    /// Opens the store; `holder` says what holds an embedded file that is already open.
    pub async fn open(&self, data_dir: &Path, holder: &str) -> anyhow::Result<Arc<dyn Store>> {
        match self {
            StoreSettings::Embedded => {
                let db = data_dir.join("state.redb");
                let store = Embedded::open(&db, EmbeddedOptions::default())
                    .with_context(|| format!("opening the store at {} ({holder})", db.display()))?;
                Ok(Arc::new(store))
            }
            StoreSettings::Etcd(e) => {
                let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
                let tls = match &e.ca {
                    Some(ca) => Some(EtcdTls {
                        ca: read(ca)?,
                        identity: match &e.identity {
                            Some((cert, key)) => Some((read(cert)?, read(key)?)),
                            None => None,
                        },
                    }),
                    None => None,
                };
                let options = EtcdOptions {
                    namespace: e.namespace.clone(),
                    user: e.user.clone(),
                    tls,
                    request_timeout: Duration::from_secs(10),
                    ..EtcdOptions::new(e.endpoints.clone())
                };
                let store = Etcd::connect(options)
                    .await
                    .with_context(|| format!("connecting to etcd at {}", e.endpoints.join(",")))?;
                Ok(Arc::new(store))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_urls_and_options_are_checked() {
        let s = StoreSettings::parse(Some("etcd://10.0.0.1:2379,10.0.0.2:2379"), EtcdFlags::default()).unwrap();
        let StoreSettings::Etcd(e) = s else { panic!() };
        assert_eq!(e.endpoints, ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
        assert_eq!(e.namespace, "berth/");
        let tls = EtcdFlags { ca: Some("ca.pem".into()), ..EtcdFlags::default() };
        let StoreSettings::Etcd(e) = StoreSettings::parse(Some("etcd://h:2379"), tls).unwrap() else { panic!() };
        assert_eq!(e.endpoints, ["https://h:2379"]);
        assert_eq!(StoreSettings::parse(None, EtcdFlags::default()).unwrap(), StoreSettings::Embedded);
        for bad in ["etcd://", "etcd://h", "etcd://h:0", "etcd://:2379", "etcd://h:2379,", "redis://h:1", "etcd"] {
            let err = StoreSettings::parse(Some(bad), EtcdFlags::default()).unwrap_err().to_string();
            assert!(err.contains("--store"), "{bad}: {err}");
        }
        let half = EtcdFlags { user: Some("u".into()), ..EtcdFlags::default() };
        assert!(StoreSettings::parse(Some("etcd://h:1"), half).unwrap_err().to_string().contains("go together"));
        let no_ca = EtcdFlags { cert: Some("c".into()), key: Some("k".into()), ..EtcdFlags::default() };
        assert!(StoreSettings::parse(Some("etcd://h:1"), no_ca).unwrap_err().to_string().contains("--etcd-ca"));
        let stray = EtcdFlags { namespace: Some("x/".into()), ..EtcdFlags::default() };
        assert!(StoreSettings::parse(None, stray).unwrap_err().to_string().contains("need --store"));
        let empty = EtcdFlags { namespace: Some(String::new()), ..EtcdFlags::default() };
        assert!(StoreSettings::parse(Some("etcd://h:1"), empty).is_err());
    }
}
