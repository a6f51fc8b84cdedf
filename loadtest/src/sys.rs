//! What the load generator reads from the operating system: its file-descriptor limit, and the
//! hub's CPU time and memory from `/proc/<pid>`.

use std::time::Duration;

use crate::error::{Error, Result};

/// Raises the soft descriptor limit to the hard one; fails clearly when `needed` is more than
/// the process can have.
pub fn ensure_fds(needed: u64) -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write/read the struct we own; no other memory is touched.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(Error::Io(std::io::Error::last_os_error()));
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(Error::Io(std::io::Error::last_os_error()));
            }
        }
    }
    let limit: u64 = lim.rlim_cur;
    // Descriptors for stdio, the HTTP client pool and the plot/result files.
    if needed + 64 > limit {
        return Err(Error::FdLimit {
            needed: needed + 64,
            limit,
        });
    }
    Ok(limit)
}

/// One reading of a process's resource use.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcSample {
    /// User + system CPU time consumed so far.
    pub cpu: Duration,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status` (VmRSS).
pub fn sample(pid: u32) -> Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces; fields after the closing parenthesis are fixed.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ")" the fields start at "state" (field 3), so utime (14) is index 11, stime index 12.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf reads a constant of the running system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let cpu_ticks = ticks(11) + ticks(12);
    let cpu = Duration::from_micros(cpu_ticks * 1_000_000 / hz);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(ProcSample {
        cpu,
        rss_bytes: rss_kb * 1024,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0);
    }

    #[test]
    fn fd_limit_is_reported_clearly() {
        let err = ensure_fds(u64::MAX / 2).unwrap_err();
        assert!(err.to_string().contains("file descriptors"), "{err}");
        assert!(ensure_fds(10).is_ok());
    }
}
