//! CPU time and memory of this process, for the benchmarks: process CPU (every thread, not wall
//! time) and the peak resident set.

/// CPU time of the whole process (user + system, every thread), in ns.
pub fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

// clock_gettime through libc needs this one unsafe call: it writes only into the timespec given.
#[allow(unsafe_code)]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    let failed = unsafe { libc::clock_gettime(clock, &mut now) } != 0;
    if failed {
        return 0;
    }
    (now.tv_sec as u64) * 1_000_000_000 + now.tv_nsec as u64
}

/// The peak resident set of this process (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
