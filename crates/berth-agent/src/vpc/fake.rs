//! A recording [`TaskNetworking`] for tests: it remembers what each task was given and can be
//! told to fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use berth_agent_protocol::network::TaskNetwork;

use super::{NetError, TaskNetworking};
use crate::runtime::BoxFuture;

#[derive(Default)]
pub struct FakeNetworking {
    /// Task id → the namespace it was attached in and its network as last applied.
    pub attached: Mutex<BTreeMap<String, (PathBuf, TaskNetwork)>>,
    /// Every call, in order: `attach t1`, `rules t1`, `detach t1`.
    pub calls: Mutex<Vec<String>>,
    /// When set, attaching fails with this message.
    pub fail_attach: Mutex<Option<String>>,
    /// When set, updating rules fails with this message.
    pub fail_rules: Mutex<Option<String>>,
}

impl FakeNetworking {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }
}

impl TaskNetworking for FakeNetworking {
    fn attach<'a>(
        &'a self,
        task_id: &'a str,
        netns: &'a Path,
        network: &'a TaskNetwork,
    ) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            self.calls.lock().expect("calls").push(format!("attach {task_id}"));
            if let Some(why) = self.fail_attach.lock().expect("fail").clone() {
                return Err(NetError::Netlink(why));
            }
            self.attached.lock().expect("attached").insert(task_id.into(), (netns.to_path_buf(), network.clone()));
            Ok(())
        })
    }

    fn update_rules<'a>(&'a self, task_id: &'a str, network: &'a TaskNetwork) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            self.calls.lock().expect("calls").push(format!("rules {task_id}"));
            if let Some(why) = self.fail_rules.lock().expect("fail").clone() {
                return Err(NetError::Firewall(why));
            }
            if let Some((_, n)) = self.attached.lock().expect("attached").get_mut(task_id) {
                *n = network.clone();
            }
            Ok(())
        })
    }

    fn detach<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Result<(), NetError>> {
        Box::pin(async move {
            self.calls.lock().expect("calls").push(format!("detach {task_id}"));
            self.attached.lock().expect("attached").remove(task_id);
            Ok(())
        })
    }

    fn attached(&self) -> Vec<String> {
        self.attached.lock().expect("attached").keys().cloned().collect()
    }
}
