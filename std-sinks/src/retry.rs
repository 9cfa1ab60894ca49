//! Retry policy (exponential backoff with full jitter, a cap, `Retry-After`)
//! and the circuit breaker that stops hammering a dead collector.

use std::time::{Duration, Instant};

/// How the worker retries a batch that failed with a retryable error.
///
/// ```
/// use std::time::Duration;
/// use ossa_events::RetryPolicy;
/// let policy = RetryPolicy::default()
///     .max_attempts(5)
///     .base(Duration::from_millis(200))
///     .cap(Duration::from_secs(5));
/// assert_eq!(policy.attempts(), 5);
/// // The 3rd retry waits at most 200 ms × 2² (a random share of it).
/// assert!(policy.backoff(3, None, u64::MAX) <= Duration::from_millis(800));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base: Duration,
    cap: Duration,
    retry_after_cap: Duration,
}

impl RetryPolicy {
    /// Default attempts per batch (the first try included).
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
    /// Default first backoff.
    pub const DEFAULT_BASE: Duration = Duration::from_millis(100);
    /// Default longest backoff.
    pub const DEFAULT_CAP: Duration = Duration::from_secs(10);
    /// Default longest wait a collector's `Retry-After` may impose.
    pub const DEFAULT_RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

    /// Never retry: a failed batch is counted failed at once.
    ///
    /// ```
    /// use ossa_events::RetryPolicy;
    /// assert_eq!(RetryPolicy::none().attempts(), 1);
    /// ```
    pub const fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::DEFAULT
        }
    }

    const DEFAULT: RetryPolicy = RetryPolicy {
        max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
        base: Self::DEFAULT_BASE,
        cap: Self::DEFAULT_CAP,
        retry_after_cap: Self::DEFAULT_RETRY_AFTER_CAP,
    };

    /// Attempts per batch, the first included (at least 1). Defaults to `10`.
    ///
    /// ```
    /// use ossa_events::RetryPolicy;
    /// assert_eq!(RetryPolicy::default().max_attempts(3).attempts(), 3);
    /// assert_eq!(RetryPolicy::default().max_attempts(0).attempts(), 1); // at least 1
    /// ```
    pub const fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = if n == 0 { 1 } else { n };
        self
    }
    /// The first backoff; each retry doubles it, up to the cap. Defaults to `100 ms`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::RetryPolicy;
    /// let p = RetryPolicy::default().base(Duration::from_millis(50));
    /// assert!(p.backoff(1, None, u64::MAX) <= Duration::from_millis(50));
    /// ```
    pub const fn base(mut self, d: Duration) -> Self {
        self.base = d;
        self
    }
    /// The longest backoff. Defaults to `10 s`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::RetryPolicy;
    /// let p = RetryPolicy::default().cap(Duration::from_secs(1));
    /// assert!(p.backoff(30, None, u64::MAX) <= Duration::from_secs(1)); // no overflow either
    /// ```
    pub const fn cap(mut self, d: Duration) -> Self {
        self.cap = d;
        self
    }
    /// The longest `Retry-After` honoured, by the retry of the batch it
    /// answered and by the hold on every later request. Defaults to `60 s`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::RetryPolicy;
    /// let p = RetryPolicy::default().retry_after_cap(Duration::from_secs(30));
    /// // A collector asking for an hour gets 30 s.
    /// assert_eq!(p.backoff(1, Some(Duration::from_secs(3600)), 0), Duration::from_secs(30));
    /// ```
    pub const fn retry_after_cap(mut self, d: Duration) -> Self {
        self.retry_after_cap = d;
        self
    }
    /// The part of a collector's `Retry-After` that is honoured: at most
    /// [`retry_after_cap`](Self::retry_after_cap).
    pub(crate) fn retry_after_bound(&self, asked: Duration) -> Duration {
        asked.min(self.retry_after_cap)
    }
    /// Attempts per batch.
    ///
    /// ```
    /// use ossa_events::RetryPolicy;
    /// assert_eq!(RetryPolicy::default().attempts(), RetryPolicy::DEFAULT_MAX_ATTEMPTS);
    /// ```
    pub const fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait before retry number `retry` (1 = the first retry): a uniformly
    /// random duration in `[0, min(cap, base * 2^(retry-1))]` ("full jitter"),
    /// or the collector's `Retry-After` (capped) when it asked for longer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::RetryPolicy;
    /// let p = RetryPolicy::default(); // base 100 ms
    /// assert_eq!(p.backoff(1, None, 0), Duration::ZERO); // full jitter: can be 0
    /// assert_eq!(p.backoff(3, None, 400_000_000), Duration::from_millis(400));
    /// // Retry-After wins when longer than the jittered wait.
    /// assert_eq!(p.backoff(1, Some(Duration::from_secs(2)), 0), Duration::from_secs(2));
    /// ```
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>, rand: u64) -> Duration {
        // `base * 2^(retry-1)` in nanoseconds, saturating: a multiplier cut
        // to `u32` stopped doubling at 2³² × `base` (4.3 s for 1 ns), short
        // of the cap.
        let base = self.base.as_nanos();
        let shift = retry.saturating_sub(1);
        let exp = if base == 0 {
            0
        } else if shift >= base.leading_zeros() {
            u128::MAX
        } else {
            base << shift
        };
        let nanos = exp.min(self.cap.as_nanos()).min(u128::from(u64::MAX)) as u64;
        let jittered = Duration::from_nanos((u128::from(rand) % (u128::from(nanos) + 1)) as u64);
        match retry_after {
            Some(a) => jittered.max(a.min(self.retry_after_cap)),
            None => jittered,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Circuit breaker settings: after `threshold` failed attempts in a row the
/// worker stops sending for `open_for` (doubling on each failed probe, up to
/// `max_open_for`), then probes with one attempt.
///
/// ```
/// use std::time::Duration;
/// use ossa_events::{sink::NullSink, BreakerConfig, Emitter};
/// let breaker = BreakerConfig::default()
///     .threshold(3)
///     .open_for(Duration::from_secs(1))
///     .max_open_for(Duration::from_secs(30));
/// let emitter = Emitter::builder("/agents/a").sink(NullSink::new()).circuit_breaker(breaker).build()?;
/// # drop(emitter);
/// # Ok::<(), ossa_events::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    threshold: u32,
    open_for: Duration,
    max_open_for: Duration,
}

impl BreakerConfig {
    /// Default failures in a row that open the breaker.
    pub const DEFAULT_THRESHOLD: u32 = 5;
    /// Default first open period.
    pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(5);
    /// Default longest open period.
    pub const DEFAULT_MAX_OPEN_FOR: Duration = Duration::from_secs(300);

    /// Failures in a row that open the breaker (at least 1). Defaults to `5`.
    ///
    /// ```
    /// use ossa_events::BreakerConfig;
    /// // 0 counts as 1: open on the first failure.
    /// assert_eq!(BreakerConfig::default().threshold(0), BreakerConfig::default().threshold(1));
    /// ```
    pub const fn threshold(mut self, n: u32) -> Self {
        self.threshold = if n == 0 { 1 } else { n };
        self
    }
    /// How long the breaker stays open before the first probe. Defaults to `5 s`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::BreakerConfig;
    /// let b = BreakerConfig::default().open_for(Duration::from_millis(500));
    /// assert_ne!(b, BreakerConfig::default());
    /// ```
    pub const fn open_for(mut self, d: Duration) -> Self {
        self.open_for = d;
        self
    }
    /// The longest open period (it doubles after each failed probe). Defaults to `300 s`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ossa_events::BreakerConfig;
    /// // A dead collector is probed at least once a minute.
    /// let b = BreakerConfig::default().max_open_for(Duration::from_secs(60));
    /// assert_ne!(b, BreakerConfig::default());
    /// ```
    pub const fn max_open_for(mut self, d: Duration) -> Self {
        self.max_open_for = d;
        self
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            threshold: Self::DEFAULT_THRESHOLD,
            open_for: Self::DEFAULT_OPEN_FOR,
            max_open_for: Self::DEFAULT_MAX_OPEN_FOR,
        }
    }
}

/// An instant far enough ahead to mean "not for a long while" (a year).
fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(365 * 24 * 3600))
        .unwrap_or(now)
}

/// The breaker's state machine.
#[derive(Debug)]
pub(crate) struct Breaker {
    config: BreakerConfig,
    failures: u32,
    /// While open: no attempt before this instant.
    open_until: Option<Instant>,
    /// When it opened, or last stayed open after a failed probe: an attempt
    /// started before then is no probe (a batch in flight meanwhile).
    opened_at: Option<Instant>,
    current_open_for: Duration,
    /// No attempt before this instant either, open or closed: the
    /// collector's `Retry-After`, which asks that no request come before
    /// then (RFC 9110 §10.2.3), not only the retry of the batch it answered.
    held_until: Option<Instant>,
}

impl Breaker {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Breaker {
            config,
            failures: 0,
            open_until: None,
            opened_at: None,
            current_open_for: config.open_for,
            held_until: None,
        }
    }

    /// When the next attempt may be made (`None`: now): the later of the
    /// open period's end and a collector's `Retry-After`.
    pub(crate) fn wait_until(&self) -> Option<Instant> {
        let until = match (self.open_until, self.held_until) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        until.filter(|t| *t > Instant::now())
    }

    /// The collector asked for no request for `d` (`Retry-After`): held
    /// back until then, whatever the breaker's state. A success does not
    /// lift it (a batch in flight since before the answer may still
    /// succeed); a shorter one does not shorten it.
    pub(crate) fn hold_for(&mut self, d: Duration) {
        let until = Instant::now().checked_add(d).unwrap_or_else(far_future);
        if self.held_until.is_none_or(|h| h < until) {
            self.held_until = Some(until);
        }
    }

    /// Whether the breaker is open (attempts are held back, or the next one is
    /// a probe).
    pub(crate) fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    pub(crate) fn success(&mut self) {
        if self.open_until.is_some() {
            tracing::info!("sink answering again: circuit breaker closed");
        }
        self.failures = 0;
        self.open_until = None;
        self.opened_at = None;
        self.current_open_for = self.config.open_for;
    }

    /// An attempt started at `sent` failed (retryably).
    pub(crate) fn failure(&mut self, sent: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.opened_at.is_some_and(|at| sent < at) {
            // Started before the breaker opened (a pipelined batch in
            // flight then): the outage it met is counted already, and it
            // was no probe.
            return;
        }
        let now = Instant::now();
        if self.open_until.is_some() {
            // A failed probe: stay open, longer.
            self.current_open_for = self
                .current_open_for
                .saturating_mul(2)
                .min(self.config.max_open_for);
            self.open_until = Some(
                now.checked_add(self.current_open_for)
                    .unwrap_or_else(far_future),
            );
            self.opened_at = Some(now);
        } else if self.failures >= self.config.threshold {
            self.current_open_for = self.current_open_for.min(self.config.max_open_for);
            self.open_until = Some(
                now.checked_add(self.current_open_for)
                    .unwrap_or_else(far_future),
            );
            self.opened_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_cap() {
        let p = RetryPolicy::default()
            .base(Duration::from_millis(100))
            .cap(Duration::from_secs(1));
        for retry in 1..20 {
            let ceiling = Duration::from_millis(100 * (1u64 << (retry - 1).min(20)))
                .min(Duration::from_secs(1));
            for r in [0u64, 1, 12345, u64::MAX] {
                let d = p.backoff(retry, None, r);
                assert!(d <= ceiling, "retry {retry}: {d:?} > {ceiling:?}");
            }
        }
        assert_eq!(p.backoff(1, None, 0), Duration::ZERO);
        assert_eq!(p.backoff(3, None, 400_000_000), Duration::from_millis(400));
        // No overflow at the extremes.
        let huge = RetryPolicy::default()
            .base(Duration::from_secs(5))
            .cap(Duration::MAX);
        for retry in [1, 33, 64, u32::MAX] {
            let _ = huge.backoff(retry, Some(Duration::MAX), u64::MAX);
        }
    }

    /// The doubling goes on past 2³² × `base`: a base of a few nanoseconds
    /// (or microseconds, with a cap of hours) still reaches its cap.
    #[test]
    fn backoff_keeps_doubling_up_to_the_cap_past_32_retries() {
        let p = RetryPolicy::default()
            .base(Duration::from_nanos(1))
            .cap(Duration::from_secs(10));
        // 1 ns × 2³⁹ > 10 s: the ceiling is the cap.
        assert_eq!(p.backoff(40, None, 10_000_000_000), Duration::from_secs(10));
        let p = RetryPolicy::default()
            .base(Duration::from_micros(1))
            .cap(Duration::from_secs(7200));
        assert_eq!(
            p.backoff(u32::MAX, None, 7_200_000_000_000),
            Duration::from_secs(7200)
        );
        // Still exact below 2³² and with a zero base.
        assert_eq!(
            p.backoff(33, None, u64::MAX),
            Duration::from_nanos(u64::MAX % ((1u64 << 32) * 1000 + 1))
        );
        let zero = RetryPolicy::default().base(Duration::ZERO);
        assert_eq!(zero.backoff(u32::MAX, None, u64::MAX), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_cap() {
        let p = RetryPolicy::default().retry_after_cap(Duration::from_secs(30));
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(2)), 0),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(3600)), 0),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn breaker_opens_after_threshold_and_closes_on_success() {
        let mut b = Breaker::new(
            BreakerConfig::default()
                .threshold(3)
                .open_for(Duration::from_secs(60)),
        );
        b.failure(Instant::now());
        b.failure(Instant::now());
        assert!(!b.is_open());
        b.failure(Instant::now());
        assert!(b.is_open());
        assert!(b.wait_until().is_some());
        b.failure(Instant::now()); // failed probe: open longer
        assert!(b.is_open());
        b.success();
        assert!(!b.is_open());
        assert!(b.wait_until().is_none());
    }

    /// A `Retry-After` holds back attempts with the breaker closed, is not
    /// lifted by a success nor shortened by a shorter one, and the breaker
    /// stays closed (it is no failure of its own).
    #[test]
    fn a_retry_after_holds_back_attempts_until_it_passes() {
        let mut b = Breaker::new(BreakerConfig::default());
        b.hold_for(Duration::from_secs(60));
        let until = b.wait_until();
        assert!(until.is_some() && !b.is_open());
        b.success();
        b.hold_for(Duration::from_secs(1));
        assert_eq!(b.wait_until(), until);
        b.hold_for(Duration::ZERO);
        let mut b = Breaker::new(BreakerConfig::default());
        b.hold_for(Duration::ZERO);
        assert_eq!(b.wait_until(), None);
        b.hold_for(Duration::MAX); // no overflow
        assert!(b.wait_until().is_some());
    }

    #[test]
    fn attempts_started_before_the_breaker_opened_are_no_probes() {
        let open_for = Duration::from_secs(60);
        let mut b = Breaker::new(
            BreakerConfig::default()
                .threshold(1)
                .open_for(open_for)
                .max_open_for(Duration::from_secs(3600)),
        );
        let sent = Instant::now();
        b.failure(sent);
        let until = b.wait_until();
        assert!(until.is_some());
        // Batches in flight since before it opened fail too: no doubling.
        for _ in 0..7 {
            b.failure(sent);
        }
        assert_eq!(b.wait_until(), until);
        assert_eq!(b.current_open_for, open_for);
        // A probe (sent after it opened) that fails doubles it.
        b.failure(Instant::now());
        assert_eq!(b.current_open_for, open_for * 2);
    }
}
