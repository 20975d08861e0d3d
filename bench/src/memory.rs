//! The most memory a server process has held, from `/proc/PID/status` (proc(5):
//! `VmHWM`, the peak resident set size, in kB).
//!
//! Why: a replicated server trades memory for speed in places (page caches, logs held
//! until a checkpoint, an allocator that keeps what it frees), and a change that gains a
//! few percent of throughput by holding another gigabyte should say so beside its
//! throughput. Reported once per target after all runs, for servers whose process is
//! known (spawned, or `,pid=PID` on `--target`): the peak covers the server's whole life,
//! so it is not split by workload.

/// Peak resident memory of process `pid` so far, in bytes.
pub fn peak_resident_bytes(pid: u32) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_hwm(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no VmHWM line in /proc/{pid}/status"),
        )
    })
}

/// The `VmHWM:` line of a `/proc/PID/status` text, in bytes (the kernel writes kB).
fn parse_vm_hwm(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let mut words = line.split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next()? == "kB").then_some(())?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_read_from_its_line_in_bytes() {
        let status = "Name:\tpalisade\nVmPeak:\t 9999999 kB\nVmHWM:\t 1996952 kB\n\
                      VmRSS:\t 1000 kB\nThreads:\t6\n";
        assert_eq!(parse_vm_hwm(status), Some(1_996_952 * 1024));
    }

    #[test]
    fn a_missing_or_garbled_line_is_none() {
        assert_eq!(parse_vm_hwm("Name:\tx\nVmRSS:\t 10 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t lots kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t 10 MB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t 10\n"), None);
    }

    #[test]
    fn this_process_peak_covers_memory_it_touched() {
        let before = peak_resident_bytes(std::process::id()).expect("own status");
        assert!(before > 0);
        // 64 MiB, every page written, so it is resident at least until dropped.
        // black_box: an allocation nothing reads could otherwise be optimised away.
        let held = std::hint::black_box(vec![1u8; 64 << 20]);
        let after = peak_resident_bytes(std::process::id()).expect("own status");
        assert!(after >= 64 << 20, "peak {after} while holding 64 MiB");
        assert!(after >= before);
        drop(held);
    }
}
