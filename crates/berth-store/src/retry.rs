//! The one loop every compare-and-swap change runs in: read what it needs, compute, write
//! guarded by the revisions read, and try again from the top when another writer won.

use std::future::Future;

/// Every attempt lost its compare-and-swap race.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many concurrent attempts to change this resource")]
pub struct Contention;

/// Runs `attempt` until it returns `Some` (done) or an error, at most `attempts` times; each
/// attempt returns `None` when its compare-and-swap lost a race. Losing every time is
/// [`Contention`].
///
/// Call it as `retry(n, move || async move { ... })` with the closure capturing references:
/// each attempt's future owns copies of them, so the whole stays `Send`.
pub async fn retry<T, E, F, Fut>(attempts: usize, mut attempt: F) -> Result<T, E>
where
    E: From<Contention>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    for _ in 0..attempts {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(Contention.into())
}
