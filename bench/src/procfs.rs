//! CPU time and memory of processes, read from /proc (Linux).
use std::fs;

/// Clock ticks per second for /proc/<pid>/stat; 100 on every Linux we run on.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds consumed so far by `pid` ("self" for us), or summed over a
/// comma-separated list of pids (several server processes: all must still be running).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    if pid.contains(',') {
        return pid.split(',').map(|p| cpu_seconds(p.trim())).sum();
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// Resident set size of `pid` in KiB.
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_our_own_process() {
        assert!(super::cpu_seconds("self").is_some());
        assert!(super::rss_kib("self").unwrap() > 0);
    }

    #[test]
    fn sums_a_list_of_pids() {
        let me = std::process::id().to_string();
        let one = super::cpu_seconds(&me).unwrap();
        let two = super::cpu_seconds(&format!("{me},{me}")).unwrap();
        // Our own CPU time moves between the reads; twice the first is a floor.
        assert!(two >= 2.0 * one, "{two} < 2 × {one}");
        assert_eq!(super::cpu_seconds(&format!("{me},0")), None, "a pid that is gone");
    }
}
