//! In-process harness for handler tests: an [`App`] over a real embedded store in a temporary
//! directory, a clock the test moves by hand and sequential ids, and a way to call any ECS
//! operation as a client would (after the protocol layer), without HTTP.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_control::Control;
use berth_control::clock::{Clock, ManualClock};
use berth_control::ids::SequentialIds;
use berth_store::{Embedded, EmbeddedOptions, Store};
use serde_json::Value;

use crate::ecs::{Ctx, Obj, dispatch};
use crate::sigv4::{Caller, KeyRing};
use crate::{App, Config};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

pub struct Harness {
    pub app: Arc<App>,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_keys(&[])
    }

    /// A harness whose installation knows these key pairs (for requests signed through the
    /// router).
    pub fn with_keys(keys: &[(&str, &str)]) -> Harness {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store: Arc<dyn Store> =
            Arc::new(Embedded::open(&dir.path().join("state.redb"), EmbeddedOptions::default()).expect("a store"));
        let options = berth_registry::Options {
            account: ACCOUNT.into(),
            region: REGION.into(),
            host: "127.0.0.1:1".into(),
            create_on_push: false,
            gc_grace: Duration::from_secs(60),
            secrets_dir: dir.path().join("secrets"),
        };
        let registry =
            berth_registry::Registry::open(&dir.path().join("registry"), store.clone(), options).expect("a registry");
        let clock = Arc::new(ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)));
        let domain = berth_control::Config {
            account: ACCOUNT.into(),
            region: REGION.into(),
            agent_timeout: Duration::from_secs(60),
            lost_agent_timeout: Duration::from_secs(300),
            stopped_task_retention: Duration::from_secs(3600),
            node: "test".into(),
            metric_period: Duration::from_secs(60),
        };
        let control = Control::new(domain, store, clock.clone(), Arc::new(SequentialIds::default()));
        let keys = KeyRing::new(keys.iter().map(|(k, s)| (k.to_string(), s.to_string())));
        let config = Config { keys, endpoint: "http://127.0.0.1:1".into() };
        let logs = Arc::new(berth_logs::segments::LogStore::new(dir.path().join("logs")));
        let now = clock.now().duration_since(std::time::UNIX_EPOCH).expect("after the epoch").as_millis() as i64;
        let metrics = Arc::new(berth_metrics::Metrics::open(&dir.path().join("metrics"), now).expect("metrics"));
        Harness { app: App::new(config, control, registry, logs, metrics), clock, _dir: dir }
    }

    /// Calls an operation of `service` as its JSON protocol would (the body read and checked
    /// against the model first, or given to the operation's body handler); `Err` carries the exception name and message.
    pub async fn call_json(
        &self,
        service: &crate::protocol::service::Service,
        operation: &str,
        input: Value,
    ) -> Result<Value, (String, String)> {
        let caller = Caller { access_key: String::new(), region: REGION.into() };
        let ctx = Ctx::new(&self.app, caller, self.app.control.clock.now(), 0);
        let body = serde_json::to_vec(&input).expect("json");
        let result = match service.body_handler(operation) {
            Some(handler) => handler(&ctx, body.into()).await,
            None => match crate::protocol::json::read(service, operation, &body) {
                Ok(input) => service.call(&ctx, operation, input).await,
                Err(e) => Err(e),
            },
        };
        result.map_err(|e| (e.code.to_string(), e.message))
    }

    /// Calls an ECS operation; `Err` carries the exception name and message.
    pub async fn call(&self, operation: &str, input: Value) -> Result<Value, (String, String)> {
        let caller = Caller { access_key: String::new(), region: REGION.into() };
        let ctx = Ctx::new(&self.app, caller, self.app.control.clock.now(), 0);
        let input: Obj = serde_json::from_value(input).expect("an object");
        dispatch(&ctx, operation, input).await.map_err(|e| (e.code.to_string(), e.message))
    }
}
