//! Per-key async locks, to queue requests in this process that would otherwise race for
//! the same compare-and-swap (for example registrations of one task definition family).
//! They only reduce retries: correctness across processes still rests on the store's CAS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

#[derive(Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().expect("lock map poisoned");
            // Drop locks nobody holds or waits for, so the map stays small.
            if map.len() > 1024 {
                map.retain(|_, l| Arc::strong_count(l) > 1);
            }
            map.entry(key.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }
}
