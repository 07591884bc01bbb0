//! A provider account's per-minute caps (`rpm`, `tpm`) for one deployment: a sliding-window
//! counter (this minute's count plus the previous minute's, weighted by how much of it is
//! still inside the window), reserved with compare-and-swap so concurrent requests never
//! overshoot a cap together.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

const MINUTE: Duration = Duration::from_secs(60);

/// One counter over a sliding minute.
#[derive(Debug)]
pub struct Window {
    epoch: Instant,
    /// Index (minutes since `epoch`) of the minute `current` counts.
    minute: AtomicU64,
    current: AtomicU64,
    previous: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            minute: AtomicU64::new(0),
            current: AtomicU64::new(0),
            previous: AtomicU64::new(0),
        }
    }
}

impl Window {
    /// Moves to the current minute if it changed; returns the share of the previous minute
    /// still inside the window.
    fn roll(&self) -> f64 {
        let elapsed = self.epoch.elapsed();
        let now = elapsed.as_secs() / 60;
        let seen = self.minute.load(Ordering::Acquire);
        if now != seen && self.minute.compare_exchange(seen, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            let ended = self.current.swap(0, Ordering::AcqRel);
            self.previous.store(if now == seen + 1 { ended } else { 0 }, Ordering::Release);
        }
        let into_minute = (elapsed.as_secs_f64() % 60.0) / MINUTE.as_secs_f64();
        1.0 - into_minute
    }

    /// The count over the last minute.
    pub fn used(&self) -> u64 {
        let carried = self.roll();
        (self.previous.load(Ordering::Acquire) as f64 * carried) as u64 + self.current.load(Ordering::Acquire)
    }

    /// Adds `amount` if that keeps the window within `cap`. A single amount larger than the
    /// whole cap is let through when the window is empty, or it could never be sent.
    pub fn try_add(&self, amount: u64, cap: u64) -> bool {
        let carried = self.roll();
        let previous = (self.previous.load(Ordering::Acquire) as f64 * carried) as u64;
        let mut current = self.current.load(Ordering::Acquire);
        loop {
            let used = previous + current;
            if used.saturating_add(amount) > cap && used > 0 {
                return false;
            }
            match self.current.compare_exchange_weak(
                current,
                current + amount,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    /// Corrects an earlier estimate by `delta` (never below zero).
    pub fn adjust(&self, delta: i64) {
        self.roll();
        if delta >= 0 {
            self.current.fetch_add(delta.unsigned_abs(), Ordering::AcqRel);
        } else {
            let _ = self.current.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(delta.unsigned_abs()))
            });
        }
    }
}

/// A deployment's caps and their windows.
#[derive(Debug, Default)]
pub struct Caps {
    /// Requests per minute, if capped.
    pub rpm: Option<u64>,
    /// Tokens per minute, if capped.
    pub tpm: Option<u64>,
    requests: Window,
    tokens: Window,
}

/// Which cap stopped a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverCap {
    /// Requests per minute.
    Rpm,
    /// Tokens per minute.
    Tpm,
}

impl Caps {
    /// Caps for one deployment.
    pub fn new(rpm: Option<u64>, tpm: Option<u64>) -> Self {
        Self { rpm, tpm, ..Self::default() }
    }

    /// Whether any cap is set (else nothing is counted).
    pub fn any(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }

    /// Reserves one request and `tokens` estimated tokens, or says which cap is full.
    pub fn reserve(&self, tokens: u64) -> Result<(), OverCap> {
        if let Some(rpm) = self.rpm
            && !self.requests.try_add(1, rpm)
        {
            return Err(OverCap::Rpm);
        }
        if let Some(tpm) = self.tpm
            && !self.tokens.try_add(tokens, tpm)
        {
            if self.rpm.is_some() {
                self.requests.adjust(-1);
            }
            return Err(OverCap::Tpm);
        }
        Ok(())
    }

    /// Gives a reservation back: the request was never sent.
    pub fn release(&self, tokens: u64) {
        if self.rpm.is_some() {
            self.requests.adjust(-1);
        }
        if self.tpm.is_some() {
            self.tokens.adjust(-(tokens.min(i64::MAX as u64) as i64));
        }
    }

    /// About how long until a request fits under `cap` again: the average spacing of the
    /// requests cap, or the rest of the minute for tokens. At least a second.
    pub fn frees_in(&self, cap: OverCap) -> Duration {
        let until_next_minute =
            MINUTE.saturating_sub(Duration::from_secs(self.tokens.epoch.elapsed().as_secs() % 60));
        let wait = match (cap, self.rpm) {
            (OverCap::Rpm, Some(rpm)) => MINUTE / u32::try_from(rpm.max(1)).unwrap_or(u32::MAX),
            _ => until_next_minute,
        };
        wait.max(Duration::from_secs(1))
    }

    /// Replaces a reservation's estimate with the tokens actually used.
    pub fn settle_tokens(&self, estimated: u64, actual: u64) {
        if self.tpm.is_some() {
            self.tokens.adjust(actual as i64 - estimated as i64);
        }
    }

    /// Requests and tokens used over the last minute.
    pub fn used(&self) -> (u64, u64) {
        (self.requests.used(), self.tokens.used())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn caps_hold_under_concurrency_and_slide() {
        let caps = std::sync::Arc::new(Caps::new(Some(50), None));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let caps = std::sync::Arc::clone(&caps);
                std::thread::spawn(move || (0..100).filter(|_| caps.reserve(1).is_ok()).count())
            })
            .collect();
        let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(admitted, 50);
        assert_eq!(caps.reserve(1), Err(OverCap::Rpm));
        // Half a minute into the next minute, half of the previous one still counts.
        tokio::time::advance(Duration::from_secs(90)).await;
        assert_eq!(caps.used().0, 25);
        assert_eq!((0..100).filter(|_| caps.reserve(1).is_ok()).count(), 25);
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_estimated_then_corrected() {
        let caps = Caps::new(None, Some(1_000));
        assert!(caps.reserve(600).is_ok());
        assert_eq!(caps.reserve(600), Err(OverCap::Tpm));
        caps.settle_tokens(600, 100);
        assert!(caps.reserve(600).is_ok());
        let empty = Caps::new(None, Some(10));
        assert!(empty.reserve(5_000).is_ok(), "a request larger than the cap passes an empty window");
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_reservation_frees_its_room() {
        let caps = Caps::new(Some(1), Some(100));
        assert!(caps.reserve(80).is_ok());
        assert_eq!(caps.reserve(1), Err(OverCap::Rpm));
        caps.release(80);
        assert_eq!(caps.used(), (0, 0));
        assert!(caps.reserve(80).is_ok());
        assert_eq!(caps.frees_in(OverCap::Rpm), Duration::from_secs(60));
        assert!(caps.frees_in(OverCap::Tpm) >= Duration::from_secs(1));
    }
}
