//! The wall clock the agent reads for the timestamps it reports (`pullStartedAt`,
//! `executionStoppedAt`). Durations and deadlines use tokio's clock (`tokio::time::Instant`),
//! which tests pause and advance; [`TokioClock`] derives wall time from it for them.

use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;

    /// Seconds since the epoch, as AWS JSON timestamps are.
    fn timestamp(&self) -> f64 {
        self.now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as f64 / 1000.0).unwrap_or(0.0)
    }
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Wall time that moves with tokio's clock: a fixed origin plus the tokio time elapsed since the
/// clock was made. Under a paused tokio runtime it is deterministic.
pub struct TokioClock {
    origin: SystemTime,
    started: tokio::time::Instant,
}

impl TokioClock {
    pub fn new(origin: SystemTime) -> Self {
        TokioClock { origin, started: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.origin + self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::new(UNIX_EPOCH + Duration::from_secs(1_000));
        assert_eq!(clock.timestamp(), 1_000.0);
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(clock.timestamp(), 1_002.5);
    }
}
