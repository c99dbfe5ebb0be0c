//! A recording [`Proxies`] for tests: it remembers which tasks have a proxy and with what,
//! and can be told to fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_agent_protocol::connect::ServiceConnect;

use super::Proxies;
use crate::runtime::BoxFuture;

#[derive(Default)]
pub struct FakeProxies {
    /// Task id → the namespace its proxy runs in and what it serves.
    pub running: Mutex<BTreeMap<String, (PathBuf, ServiceConnect)>>,
    /// Every call, in order: `start t1`, `stop t1`.
    pub calls: Mutex<Vec<String>>,
    /// When set, starting fails with this message.
    pub fail_start: Mutex<Option<String>>,
}

impl FakeProxies {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }
}

impl Proxies for FakeProxies {
    fn start<'a>(
        &'a self,
        task_id: &'a str,
        netns: &'a Path,
        config: &'a ServiceConnect,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.calls.lock().expect("calls").push(format!("start {task_id}"));
            if let Some(why) = self.fail_start.lock().expect("fail").clone() {
                return Err(why);
            }
            self.running.lock().expect("running").insert(task_id.into(), (netns.to_path_buf(), config.clone()));
            Ok(())
        })
    }

    fn stop(&self, task_id: &str) {
        self.calls.lock().expect("calls").push(format!("stop {task_id}"));
        self.running.lock().expect("running").remove(task_id);
    }
}
