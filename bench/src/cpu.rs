//! The CPU time a server process has used, from `/proc/PID/stat` (proc(5): fields 14
//! and 15, `utime` and `stime`, in clock ticks; every thread of the process counted).
//!
//! Why: on a shared two-core machine a replicated server's latency and throughput
//! follow the CPU each call costs it (eight nodes share the cores; docs/PERFORMANCE.md),
//! and CPU per call or per MB moves far less with a neighbour's load than wall-clock
//! figures do. Reported beside the throughput when the server's process id is known
//! (spawned servers, or `,pid=PID` on `--target`).

use std::time::Duration;

/// CPU time (user and system) process `pid` has used so far.
pub fn process_cpu(pid: u32) -> std::io::Result<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text, ticks_per_second()).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat: {text:?}"),
        )
    })
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux when unknown).
fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the system and has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// `utime + stime` of one `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted from
/// the last `)`.
fn parse_stat(text: &str, ticks_per_s: u64) -> Option<Duration> {
    let after = &text[text.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; utime and stime are 14 and 15.
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(ticks_per_s.max(1));
    Some(Duration::from_nanos(u64::try_from(nanos).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_command_name() {
        // A name with a space and a parenthesis; utime 250 and stime 50 ticks.
        let line = "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 \
                    20 0 9 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat(line, 100), Some(Duration::from_millis(3_000)));
        assert_eq!(parse_stat(line, 1_000), Some(Duration::from_millis(300)));
    }

    #[test]
    fn a_garbled_line_is_none() {
        assert_eq!(parse_stat("4242 no parentheses 1 2 3", 100), None);
        assert_eq!(parse_stat("4242 (x) S 1 2", 100), None);
        assert_eq!(
            parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 many 50 0", 100),
            None
        );
    }

    #[test]
    fn this_process_uses_cpu_while_it_spins() {
        let me = std::process::id();
        let before = process_cpu(me).expect("reads /proc/self");
        // Spin until the counter moves (one clock tick), or give up after 5 s.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        let after = loop {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
            let now = process_cpu(me).expect("reads /proc/self");
            if now > before || start.elapsed() > Duration::from_secs(5) {
                break now;
            }
        };
        std::hint::black_box(x);
        assert!(
            after > before,
            "CPU time did not advance: {before:?} → {after:?}"
        );
    }
}
