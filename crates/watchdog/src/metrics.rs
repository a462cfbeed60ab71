//! The watchdog's Prometheus metrics (`GET /metrics`): checks by result, actions by kind and
//! outcome, and each service's health and consecutive failures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// One service's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFigures {
    /// Checks that passed.
    pub checks_ok: u64,
    /// Checks that failed.
    pub checks_failed: u64,
    /// Actions asked for, by `(action, outcome)`.
    pub actions: BTreeMap<(&'static str, &'static str), u64>,
    /// Whether the last check passed.
    pub healthy: bool,
    /// Consecutive failed checks.
    pub consecutive_failures: u32,
}

/// Every service's figures, shared by the checking tasks and the endpoint.
#[derive(Debug, Clone, Default)]
pub struct Figures(Arc<Mutex<BTreeMap<String, ServiceFigures>>>);

impl Figures {
    /// Changes the figures of `service`.
    pub fn update(&self, service: &str, change: impl FnOnce(&mut ServiceFigures)) {
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        change(all.entry(service.to_owned()).or_default());
    }

    /// A copy of every service's figures.
    pub fn snapshot(&self) -> BTreeMap<String, ServiceFigures> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let all = self.snapshot();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP outpost_watchdog_checks_total Health checks of each service, by result.\n# TYPE outpost_watchdog_checks_total counter"
        );
        for (service, f) in &all {
            let _ =
                writeln!(out, "outpost_watchdog_checks_total{{service=\"{service}\",result=\"ok\"}} {}", f.checks_ok);
            let _ = writeln!(
                out,
                "outpost_watchdog_checks_total{{service=\"{service}\",result=\"failed\"}} {}",
                f.checks_failed
            );
        }
        let _ = writeln!(
            out,
            "# HELP outpost_watchdog_actions_total Restarts and recreations asked of outpostd, by outcome.\n# TYPE outpost_watchdog_actions_total counter"
        );
        for (service, f) in &all {
            for ((action, outcome), n) in &f.actions {
                let _ = writeln!(
                    out,
                    "outpost_watchdog_actions_total{{service=\"{service}\",action=\"{action}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP outpost_watchdog_service_healthy Whether the last health check passed.\n# TYPE outpost_watchdog_service_healthy gauge"
        );
        for (service, f) in &all {
            let _ = writeln!(out, "outpost_watchdog_service_healthy{{service=\"{service}\"}} {}", u8::from(f.healthy));
        }
        let _ = writeln!(
            out,
            "# HELP outpost_watchdog_consecutive_failures Failed health checks in a row.\n# TYPE outpost_watchdog_consecutive_failures gauge"
        );
        for (service, f) in &all {
            let _ = writeln!(
                out,
                "outpost_watchdog_consecutive_failures{{service=\"{service}\"}} {}",
                f.consecutive_failures
            );
        }
        out
    }
}

/// Serves `/metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, figures: Figures, shutdown: CancellationToken) {
    let render = move || {
        let text = figures.render();
        async move { Ok(text) }
    };
    outpost_daemon::metrics::serve(listener, render, shutdown).await;
}
