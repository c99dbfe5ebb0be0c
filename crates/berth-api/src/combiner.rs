//! Flat combining: requests that would each take a lock and an fsync on the same key (for
//! example registrations in one task definition family) are queued; the first becomes the
//! leader and commits everything queued in one store transaction, then hands each request
//! its own result. One compare-and-swap and one fsync then serve a whole batch, and the
//! batch's writes stay in arrival order.
//!
//! Handlers run in their own task (see `protocol`), so a leader is never cancelled midway
//! by a client hanging up; followers always get an answer.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::error::{ApiError, ApiResult};

struct Queue<T, R> {
    items: Vec<(T, oneshot::Sender<ApiResult<R>>)>,
    leader: bool,
}

pub struct Combiner<T, R> {
    queues: Mutex<HashMap<String, Queue<T, R>>>,
}

impl<T, R> Default for Combiner<T, R> {
    fn default() -> Self {
        Combiner { queues: Mutex::new(HashMap::new()) }
    }
}

impl<T, R> Combiner<T, R> {
    /// Queues `item` under `key` and returns its result. `commit` receives a batch in
    /// arrival order and returns one result per item, in the same order.
    pub async fn submit<F, Fut>(&self, key: &str, item: T, commit: F) -> ApiResult<R>
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<ApiResult<R>>>,
    {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut queues = self.queues.lock().expect("combiner lock poisoned");
            let queue = queues.entry(key.to_string()).or_insert_with(|| Queue { items: Vec::new(), leader: false });
            queue.items.push((item, tx));
            !std::mem::replace(&mut queue.leader, true)
        };
        if lead {
            loop {
                let batch = {
                    let mut queues = self.queues.lock().expect("combiner lock poisoned");
                    let queue = queues.get_mut(key).expect("the leader's queue exists");
                    if queue.items.is_empty() {
                        queues.remove(key);
                        break;
                    }
                    std::mem::take(&mut queue.items)
                };
                let (items, senders): (Vec<T>, Vec<_>) = batch.into_iter().unzip();
                let mut results = commit(items).await.into_iter();
                for sender in senders {
                    let result = results
                        .next()
                        .unwrap_or_else(|| Err(ApiError::server("batch commit returned too few results")));
                    let _ = sender.send(result);
                }
            }
        }
        rx.await.unwrap_or_else(|_| Err(ApiError::server("request batch was abandoned")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_submissions_share_commits_and_get_their_own_results() {
        let combiner: Arc<Combiner<u32, u32>> = Arc::default();
        let commits = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::new();
        for i in 0..50u32 {
            let (c, n) = (combiner.clone(), commits.clone());
            handles.push(tokio::spawn(async move {
                c.submit("k", i, |items| {
                    let n = n.clone();
                    async move {
                        n.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        items.into_iter().map(|x| Ok(x * 10)).collect()
                    }
                })
                .await
            }));
        }
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.await.unwrap().unwrap(), i as u32 * 10);
        }
        let used = commits.load(Ordering::SeqCst);
        assert!(used < 50, "submissions were combined ({used} commits for 50)");
        assert!(combiner.queues.lock().unwrap().is_empty(), "queues are cleaned up");
    }
}
