//! `table import`'s progress line (redrawn in place on a terminal, every few seconds in CI), and
//! what the printers keep between its updates.

use std::time::{Duration, Instant};

use super::record::ImportCounts;

/// Duplicate keys shown one by one before they are only counted.
pub(super) const DUPLICATES_SHOWN: u64 = 20;
/// In CI, a progress line this often.
pub(super) const CI_EVERY: Duration = Duration::from_secs(5);

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1:05` or `1:02:05`.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The progress line: `notes: 120,000 written (39,800/s, 41,020 WCU/s) · 12.0 % · ETA 0:42 ·
/// 3 throttled · 0 rejected`.
pub fn progress_line(counts: &ImportCounts) -> String {
    let mut parts = vec![format!(
        "{}: {} written ({}/s, {} WCU/s)",
        counts.table,
        thousands(counts.written),
        thousands(counts.items_per_s.round() as u64),
        thousands(counts.wcu_per_s.round() as u64)
    )];
    if let Some(percent) = counts.percent {
        parts.push(format!("{percent:.1} %"));
        let elapsed = counts.elapsed_s.0.as_secs_f64();
        if percent > 0.5 && percent < 100.0 {
            parts.push(format!(
                "ETA {}",
                clock(elapsed * (100.0 - percent) / percent)
            ));
        }
    }
    if counts.throttles > 0 {
        parts.push(format!("{} throttled", thousands(counts.throttles)));
    }
    if counts.retries > 0 {
        parts.push(format!("{} retried", thousands(counts.retries)));
    }
    parts.push(format!("{} rejected", thousands(counts.rejected)));
    if counts.duplicates > 0 {
        parts.push(format!("{} duplicate keys", thousands(counts.duplicates)));
    }
    parts.join(" · ")
}

/// Progress reporting state for one import.
#[derive(Default)]
pub struct ImportView {
    /// When the last progress line (or record) was written.
    pub(super) last_line: Option<Instant>,
    /// Duplicates shown so far.
    pub(super) duplicates_shown: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::record::Seconds;

    #[test]
    fn the_progress_line_says_rate_share_and_eta() {
        let counts = ImportCounts {
            table: "notes".into(),
            read: 120_000,
            written: 120_000,
            rejected: 0,
            duplicates: 0,
            throttles: 3,
            retries: 3,
            items_per_s: 39_800.4,
            wcu_per_s: 41_020.0,
            percent: Some(25.0),
            elapsed_s: Seconds(Duration::from_secs(3)),
        };
        assert_eq!(
            progress_line(&counts),
            "notes: 120,000 written (39,800/s, 41,020 WCU/s) · 25.0 % · ETA 0:09 · 3 throttled · 3 retried · 0 rejected"
        );
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
