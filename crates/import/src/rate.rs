//! The write rate: as fast as the requests go until DynamoDB first pushes back (or the cap, when
//! the table's provisioned capacity or `--max-wcu` sets one), then additive increase and
//! multiplicative decrease around what the table accepts. Pure: time is passed in, in seconds.

use std::collections::VecDeque;

/// After a cut, throttles for this long are answers to requests sent before it: not cut again.
const COOL_DOWN: f64 = 0.5;
/// A cut keeps this much of what the table accepted over the last second.
const CUT_TO: f64 = 0.9;
/// Without throttles, the limit grows by this share a second.
const GROWTH_PER_SECOND: f64 = 0.08;
/// The smallest limit: one batch of 1 KB items a second.
const FLOOR: f64 = 25.0;
/// The window over which the accepted rate is measured.
const WINDOW: f64 = 1.0;

/// The rate controller.
#[derive(Debug, Clone)]
pub struct Rate {
    cap: Option<f64>,
    limit: Option<f64>,
    tokens: f64,
    refilled: f64,
    last_cut: f64,
    last_growth: f64,
    accepted: VecDeque<(f64, u64)>,
    accepted_in_window: u64,
    started: f64,
}

impl Rate {
    /// A controller capped at `cap` write units a second (uncapped: unlimited until throttled).
    pub fn new(cap: Option<f64>, now: f64) -> Self {
        let cap = cap.map(|c| c.max(FLOOR));
        Rate {
            cap,
            limit: cap,
            tokens: 0.0,
            refilled: now,
            last_cut: f64::NEG_INFINITY,
            last_growth: now,
            accepted: VecDeque::new(),
            accepted_in_window: 0,
            started: now,
        }
    }

    /// The current limit in write units a second (`None`: unlimited).
    pub fn limit(&self) -> Option<f64> {
        self.limit
    }

    /// Takes `units` for a request to be sent at `now`; returns how many seconds to wait first.
    pub fn reserve(&mut self, units: u64, now: f64) -> f64 {
        let Some(limit) = self.limit else {
            return 0.0;
        };
        // A tenth of a second of burst: smooth, yet a whole batch always fits.
        let burst = (limit * 0.1).max(25.0);
        self.tokens = (self.tokens + (now - self.refilled) * limit).min(burst);
        self.refilled = now;
        self.tokens -= units as f64;
        if self.tokens >= 0.0 {
            0.0
        } else {
            -self.tokens / limit
        }
    }

    /// What the table accepted over the last second, in write units a second.
    pub fn accepted_rate(&self, now: f64) -> f64 {
        // Over the window, or since the first acceptance in it when traffic began later.
        let first = self.accepted.front().map_or(self.started, |(at, _)| *at);
        let span = (now - first.max(self.started)).clamp(0.1, WINDOW);
        self.accepted_in_window as f64 / span
    }

    fn forget_before(&mut self, now: f64) {
        while let Some(&(at, units)) = self.accepted.front() {
            if at >= now - WINDOW {
                break;
            }
            self.accepted.pop_front();
            self.accepted_in_window -= units;
        }
    }

    /// The table took `units`; without a recent throttle the limit grows.
    pub fn accepted(&mut self, units: u64, now: f64) {
        self.accepted.push_back((now, units));
        self.accepted_in_window += units;
        self.forget_before(now);
        if let Some(limit) = self.limit
            && now - self.last_cut >= COOL_DOWN
        {
            let grown = limit * (1.0 + GROWTH_PER_SECOND * (now - self.last_growth).min(1.0));
            self.limit = Some(self.cap.map_or(grown, |cap| grown.min(cap)));
        }
        self.last_growth = now;
    }

    /// The table pushed back (a throttling error or unprocessed items): the limit drops below
    /// what it accepted, once per cool-down.
    pub fn throttled(&mut self, now: f64) {
        if now - self.last_cut < COOL_DOWN {
            return;
        }
        self.forget_before(now);
        let accepted = self.accepted_rate(now);
        let base = match self.limit {
            Some(limit) => limit.min(accepted.max(FLOOR) / CUT_TO),
            None => accepted,
        };
        self.limit = Some((base * CUT_TO).max(FLOOR));
        self.tokens = self.tokens.min(0.0);
        self.last_cut = now;
        self.last_growth = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_until_the_first_throttle_then_below_what_was_accepted() {
        let mut rate = Rate::new(None, 0.0);
        assert_eq!(rate.reserve(25, 0.0), 0.0);
        for i in 0..40 {
            rate.accepted(25, 0.5 + i as f64 * 0.0125); // 2,000 units a second
        }
        rate.throttled(1.0);
        let limit = rate.limit().unwrap();
        assert!((1700.0..=1900.0).contains(&limit), "{limit}");
        // Throttles within the cool-down answer requests sent before the cut.
        rate.throttled(1.2);
        assert_eq!(rate.limit(), Some(limit));
    }

    #[test]
    fn grows_without_throttles_up_to_the_cap() {
        let mut rate = Rate::new(Some(1000.0), 0.0);
        assert_eq!(rate.limit(), Some(1000.0));
        rate.accepted(25, 0.1);
        assert_eq!(rate.limit(), Some(1000.0));
        let mut uncapped = Rate::new(None, 0.0);
        for i in 0..10 {
            uncapped.accepted(100, i as f64 * 0.1);
        }
        uncapped.throttled(1.0);
        let cut = uncapped.limit().unwrap();
        for i in 1..=20 {
            uncapped.accepted(25, 1.0 + COOL_DOWN + i as f64 * 0.1);
        }
        assert!(
            uncapped.limit().unwrap() > cut * 1.1,
            "{:?} after {cut}",
            uncapped.limit()
        );
    }

    #[test]
    fn paces_requests_to_the_limit() {
        let mut rate = Rate::new(Some(100.0), 0.0);
        let mut waited = 0.0;
        let mut now = 0.0;
        for _ in 0..8 {
            let wait = rate.reserve(25, now);
            waited += wait;
            now += wait;
        }
        // 200 units at 100 a second, from an empty bucket: 2 s.
        assert!((1.95..=2.05).contains(&waited), "{waited}");
    }

    #[test]
    fn never_below_the_floor() {
        let mut rate = Rate::new(Some(1.0), 0.0);
        assert_eq!(rate.limit(), Some(FLOOR));
        rate.throttled(5.0);
        assert_eq!(rate.limit(), Some(FLOOR));
    }
}
