//! CPU time of processes, from `/proc/<pid>/stat`, to set our processes' work beside the
//! emulators' over the same run.

/// User plus system CPU time a process has used so far, in milliseconds (all its threads).
pub fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture it exports to
    // user space.
    Some(ticks * 10)
}

/// This process's own CPU time so far, in milliseconds.
pub fn own_cpu_ms() -> u64 {
    cpu_ms(std::process::id()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_busy_should_see_own_cpu_time_grow() {
        let before = own_cpu_ms();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(120) {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(own_cpu_ms() > before, "no CPU time counted");
        assert_eq!(cpu_ms(u32::MAX), None);
    }
}
