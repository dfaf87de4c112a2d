//! `deployer local` for people: one line per request, with its status, the function that
//! answered, its time and its cold start.

use std::time::Duration;

use console::style;
use deployer_local::Served;

/// Milliseconds with one decimal.
pub(super) fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

/// `200 GET /notes/1 api 12.5 ms (cold start 40.1 ms)`.
pub fn request_line(served: &Served) -> String {
    let status = match served.status {
        200..=399 => style(served.status.to_string()).green(),
        400..=499 => style(served.status.to_string()).yellow(),
        _ => style(served.status.to_string()).red(),
    };
    let mut line = format!(
        "{} {} {} {}",
        status.for_stderr(),
        served.method,
        served.path,
        served.function.as_deref().unwrap_or("(load balancer)")
    );
    line.push_str(&format!(" {:.1} ms", ms(served.duration)));
    if let Some(cold) = served.cold_start {
        line.push_str(&format!(" (cold start {:.1} ms)", ms(cold)));
    }
    if let Some(error) = &served.error {
        line.push_str(&format!(": {error}"));
    }
    line
}
