//! What the machine was doing while we measured: CPU count and load average
//! at start and end, recorded with the results so a noisy run can be told
//! from a regression (these machines are shared).

use serde::Serialize;

/// A snapshot of the machine's load.
#[derive(Debug, Clone, Serialize)]
pub struct Load {
    /// CPUs available to this process.
    pub cpus: usize,
    /// 1-minute load average from /proc/loadavg, when readable.
    pub loadavg_1m: Option<f64>,
}

impl Load {
    pub fn now() -> Load {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let loadavg_1m = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok()));
        Load { cpus, loadavg_1m }
    }

    /// True when more runnable work than CPUs was waiting: figures will be
    /// noisy and lower than on an idle machine.
    pub fn busy(&self) -> bool {
        self.loadavg_1m.is_some_and(|l| l > self.cpus as f64)
    }
}

/// Load at the start and the end of the measurements.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub start: Load,
    pub end: Load,
}
