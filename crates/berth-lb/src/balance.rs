//! Choosing where a request goes, as pure functions: which targets are eligible (healthy ones,
//! or every non-draining one when none is: ALB fails open), round robin and least
//! outstanding requests over them with slow start's linear ramp, and weighted choice among
//! a forward action's target groups. The callers hold the counters and the clock.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How a target stands for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Healthy, or health checks off: gets traffic.
    Serving,
    /// Initial or unhealthy: gets traffic only when the group fails open.
    NotServing,
    /// Deregistering: never gets a new request.
    Draining,
}

/// What the balancing functions need to know of a target.
pub trait Candidate {
    fn standing(&self) -> Standing;
    /// Requests (or connections) in progress to it.
    fn outstanding(&self) -> u32;
    /// Its share of traffic in (0, 1]: below 1 while it ramps up in slow start.
    fn share(&self) -> f64;
}

/// Which targets take new traffic at this moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligible {
    /// The serving targets.
    Serving,
    /// None is serving: every non-draining target (fail open).
    FailOpen,
    /// No target can take a new request (none registered, or all draining).
    Nobody,
}

impl Eligible {
    pub fn of<T: Candidate>(targets: &[T]) -> Self {
        let mut any = false;
        for t in targets {
            match t.standing() {
                Standing::Serving => return Eligible::Serving,
                Standing::NotServing => any = true,
                Standing::Draining => {}
            }
        }
        if any { Eligible::FailOpen } else { Eligible::Nobody }
    }

    pub fn admits(self, standing: Standing) -> bool {
        match self {
            Eligible::Serving => standing == Standing::Serving,
            Eligible::FailOpen => standing != Standing::Draining,
            Eligible::Nobody => false,
        }
    }
}

/// Round robin: the `counter`-th eligible target in turn. A target ramping up in slow start
/// is taken only with probability equal to its share (`coin` yields uniform numbers in
/// [0, 1)); when it declines, the next eligible one in turn is asked.
pub fn round_robin<T: Candidate>(
    targets: &[T],
    eligible: Eligible,
    counter: usize,
    mut coin: impl FnMut() -> f64,
) -> Option<usize> {
    let n = targets.iter().filter(|t| eligible.admits(t.standing())).count();
    if n == 0 {
        return None;
    }
    let first = counter % n;
    let mut order = targets
        .iter()
        .enumerate()
        .filter(|(_, t)| eligible.admits(t.standing()))
        .map(|(i, _)| i)
        .cycle()
        .skip(first)
        .take(n);
    let start = order.next()?;
    if targets[start].share() >= 1.0 || coin() < targets[start].share() {
        return Some(start);
    }
    order.find(|&i| targets[i].share() >= 1.0 || coin() < targets[i].share()).or(Some(start))
}

/// Least outstanding requests: the eligible target with the fewest requests in progress,
/// weighted by its slow-start share (a ramping target looks busier); ties go to the first
/// one in turn from `counter`, so idle targets share the load evenly.
pub fn least_outstanding<T: Candidate>(targets: &[T], eligible: Eligible, counter: usize) -> Option<usize> {
    let n = targets.len();
    if n == 0 {
        return None;
    }
    let mut best: Option<(usize, f64)> = None;
    for k in 0..n {
        let i = (counter + k) % n;
        let t = &targets[i];
        if !eligible.admits(t.standing()) {
            continue;
        }
        let load = (t.outstanding() as f64 + 1.0) / t.share().max(1e-3);
        if best.is_none_or(|(_, b)| load < b) {
            best = Some((i, load));
        }
    }
    best.map(|(i, _)| i)
}

/// Slow start's linear ramp: the share of a target that has been healthy for `elapsed` of a
/// `duration`-long slow start (full share once it is over, or when slow start is off).
pub fn slow_start_share(elapsed: Duration, duration: Duration) -> f64 {
    if duration.is_zero() || elapsed >= duration {
        return 1.0;
    }
    (elapsed.as_secs_f64() / duration.as_secs_f64()).clamp(0.0, 1.0)
}

/// Weighted choice among a forward action's groups, deterministic: over every run of
/// `total` consecutive picks each index is chosen exactly `weight` times, interleaved (the
/// counter walks the weight line with a stride coprime to the total).
#[derive(Debug)]
pub struct Weighted {
    /// Cumulative weights: index i owns [cumulative[i-1], cumulative[i]).
    cumulative: Vec<u64>,
    stride: u64,
    counter: AtomicU32,
}

impl Weighted {
    pub fn new(weights: &[u32]) -> Self {
        let mut sum = 0u64;
        let cumulative = weights
            .iter()
            .map(|w| {
                sum += *w as u64;
                sum
            })
            .collect();
        let stride = stride_for(sum);
        Self { cumulative, stride, counter: AtomicU32::new(0) }
    }

    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The index to use next; None when every weight is 0.
    pub fn pick(&self) -> Option<usize> {
        let total = self.total();
        match self.cumulative.len() {
            0 => None,
            _ if total == 0 => None,
            1 => Some(0),
            _ => {
                let c = self.counter.fetch_add(1, Ordering::Relaxed) as u64 % total;
                let point = c * self.stride % total;
                self.cumulative.iter().position(|&end| point < end)
            }
        }
    }
}

/// A stride near the golden section of `total` that is coprime to it, so that `c * stride`
/// visits every point of the weight line once per cycle, spread out.
fn stride_for(total: u64) -> u64 {
    if total <= 2 {
        return 1;
    }
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let mut s = (total as f64 * 0.618) as u64;
    while gcd(s, total) != 1 {
        s += 1;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Fake {
        standing: Standing,
        outstanding: u32,
        share: f64,
    }

    fn serving(n: usize) -> Vec<Fake> {
        vec![Fake { standing: Standing::Serving, outstanding: 0, share: 1.0 }; n]
    }

    impl Candidate for Fake {
        fn standing(&self) -> Standing {
            self.standing
        }
        fn outstanding(&self) -> u32 {
            self.outstanding
        }
        fn share(&self) -> f64 {
            self.share
        }
    }

    #[test]
    fn round_robin_visits_each_in_turn() {
        let t = serving(3);
        let picks: Vec<_> = (0..6).map(|c| round_robin(&t, Eligible::Serving, c, || 0.5).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn round_robin_skips_the_unhealthy_and_draining() {
        let mut t = serving(4);
        t[1].standing = Standing::NotServing;
        t[2].standing = Standing::Draining;
        let e = Eligible::of(&t);
        assert_eq!(e, Eligible::Serving);
        let picks: Vec<_> = (0..4).map(|c| round_robin(&t, e, c, || 0.5).unwrap()).collect();
        assert_eq!(picks, [0, 3, 0, 3]);
    }

    #[test]
    fn fails_open_to_every_non_draining_target() {
        let mut t = serving(3);
        t[0].standing = Standing::NotServing;
        t[1].standing = Standing::Draining;
        t[2].standing = Standing::NotServing;
        let e = Eligible::of(&t);
        assert_eq!(e, Eligible::FailOpen);
        let picks: Vec<_> = (0..4).map(|c| round_robin(&t, e, c, || 0.5).unwrap()).collect();
        assert_eq!(picks, [0, 2, 0, 2]);
        let all_draining = vec![Fake { standing: Standing::Draining, outstanding: 0, share: 1.0 }; 2];
        assert_eq!(Eligible::of(&all_draining), Eligible::Nobody);
        assert_eq!(round_robin(&all_draining, Eligible::Nobody, 0, || 0.0), None);
        assert_eq!(Eligible::of::<Fake>(&[]), Eligible::Nobody);
    }

    #[test]
    fn least_outstanding_prefers_the_idle_target() {
        let mut t = serving(3);
        t[0].outstanding = 5;
        t[1].outstanding = 0;
        t[2].outstanding = 2;
        for c in 0..5 {
            assert_eq!(least_outstanding(&t, Eligible::Serving, c), Some(1));
        }
        let idle = serving(3);
        let picks: Vec<_> = (0..3).map(|c| least_outstanding(&idle, Eligible::Serving, c).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2], "ties rotate");
        t[1].standing = Standing::Draining;
        assert_eq!(least_outstanding(&t, Eligible::Serving, 0), Some(2));
    }

    #[test]
    fn slow_start_ramps_linearly() {
        let d = Duration::from_secs(30);
        assert_eq!(slow_start_share(Duration::ZERO, d), 0.0);
        assert!((slow_start_share(Duration::from_secs(15), d) - 0.5).abs() < 1e-9);
        assert!((slow_start_share(Duration::from_secs(3), d) - 0.1).abs() < 1e-9);
        assert_eq!(slow_start_share(Duration::from_secs(30), d), 1.0);
        assert_eq!(slow_start_share(Duration::from_secs(99), d), 1.0);
        assert_eq!(slow_start_share(Duration::ZERO, Duration::ZERO), 1.0, "off");
    }

    #[test]
    fn a_ramping_target_gets_its_share_under_round_robin() {
        let mut t = serving(2);
        t[1].share = 0.25;
        let mut seed = 7u64;
        let mut coin = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let n = 20_000;
        let to_new = (0..n).filter(|&c| round_robin(&t, Eligible::Serving, c, &mut coin) == Some(1)).count();
        // Offered every other request, taken a quarter of those times: about 1/8.
        let ratio = to_new as f64 / n as f64;
        assert!((ratio - 0.125).abs() < 0.02, "{ratio}");
    }

    #[test]
    fn least_outstanding_counts_a_ramping_target_as_busier() {
        let mut t = serving(2);
        t[0].outstanding = 1;
        t[1].share = 0.25; // idle, but (0+1)/0.25 = 4 > (1+1)/1
        assert_eq!(least_outstanding(&t, Eligible::Serving, 1), Some(0));
    }

    #[test]
    fn weights_are_exact_per_cycle_and_interleaved() {
        let w = Weighted::new(&[3, 1]);
        let picks: Vec<_> = (0..8).map(|_| w.pick().unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 2);
        assert_ne!(&picks[..4], &[0, 0, 0, 1], "interleaved, not in blocks");
        let w = Weighted::new(&[90, 10]);
        let picks: Vec<_> = (0..100).map(|_| w.pick().unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 1).count(), 10);
        assert!(picks[..20].contains(&1), "the small group shows up early");
        let zero = Weighted::new(&[0, 5]);
        assert!((0..10).all(|_| zero.pick() == Some(1)), "a weight of 0 gets nothing");
        assert_eq!(Weighted::new(&[0, 0]).pick(), None);
        assert_eq!(Weighted::new(&[]).pick(), None);
    }
}
