//! What the machine was doing while we measured: CPU count and load average
//! at start and end, recorded with the results so a noisy run can be told
//! from a regression (these machines are shared).

use serde::{Deserialize, Serialize};

/// A snapshot of the machine's load.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    pub start: Load,
    pub end: Load,
}

/// The machine the figures come from, for the report's "Machine" section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cpus: usize,
    pub memory_gib: Option<f64>,
    pub kernel: String,
    pub os: String,
    /// Whether /proc/cpuinfo lists the hypervisor flag (a VM: expect noisy
    /// disks and stolen time).
    pub virtual_machine: bool,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Machine {
    /// Reads /proc and /etc/os-release; fields that cannot be read say
    /// "unknown" rather than failing a benchmark.
    pub fn describe() -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        let virtual_machine = cpuinfo
            .lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
        let memory_gib = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / (1024.0 * 1024.0));
        let kernel = match read("/proc/sys/kernel/osrelease").trim() {
            "" => "unknown".to_string(),
            k => format!("Linux {k}"),
        };
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "unknown".to_string());
        Machine {
            cpu_model,
            cpus: Load::now().cpus,
            memory_gib,
            kernel,
            os,
            virtual_machine,
        }
    }
}
