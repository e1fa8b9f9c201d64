//! Readings of the machine from `/proc`, and pinning.
//!
//! - CPU time of a process: `utime + stime + cutime + cstime` of
//!   `/proc/<pid>/stat` (children that it waited for included, so an exec
//!   module's processes count as the server's), in clock ticks.
//! - Busy time of the machine: the `cpu` line of `/proc/stat` (user, nice,
//!   system, irq, softirq, steal; idle and iowait are not busy).
//! - *Other load* during a window: the machine's busy time minus the load
//!   generator's and the measured server's, divided by the window's length:
//!   how many cores something else used meanwhile.
//! - Resident memory: `VmRSS` of `/proc/<pid>/status`.

use std::sync::OnceLock;
use std::time::Duration;

use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::{Pid, SysconfVar, sysconf};

use crate::Result;

/// Clock ticks per second (`CLK_TCK`), usually 100.
pub fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        sysconf(SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// `ticks` clock ticks in microseconds.
pub fn ticks_to_us(ticks: u64) -> f64 {
    ticks as f64 * 1e6 / clock_ticks_per_second() as f64
}

/// The CPU time of process `pid` (`"self"` for this one) and of the
/// children it waited for, in clock ticks.
///
/// # Errors
/// When the process does not exist or its stat cannot be parsed.
pub fn process_cpu_ticks(pid: &str) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may contain spaces:
    // fields are counted from the last ')'.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("unexpected /proc/PID/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after[0] is field 3 (state); utime..cstime are fields 14..=17.
    let ticks = fields
        .get(11..15)
        .ok_or("short /proc/PID/stat")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<std::result::Result<u64, _>>()?;
    Ok(ticks)
}

/// The resident memory of process `pid`, in KiB.
///
/// # Errors
/// When the process does not exist.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS in /proc/PID/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("unexpected VmRSS line")?
        .parse()?)
}

/// The CPU ticks of process `pid` and of its live children (its exited
/// children's are in its own): a PostgreSQL postmaster and its backends.
pub fn process_tree_cpu_ticks(pid: u32) -> u64 {
    let parent = pid.to_string();
    let children: u64 = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
                .filter(|name| {
                    std::fs::read_to_string(format!("/proc/{name}/stat")).is_ok_and(|stat| {
                        stat.rsplit_once(')')
                            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                            == Some(parent.as_str())
                    })
                })
                .map(|name| process_cpu_ticks(&name).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    process_cpu_ticks(&parent).unwrap_or(0) + children
}

/// The context switches (voluntary and not) of the live threads of process
/// `pid`.
pub fn context_switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// The machine's busy time over all cores, in clock ticks.
///
/// # Errors
/// When `/proc/stat` cannot be read.
pub fn machine_busy_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or("no cpu line in /proc/stat")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal (guest is in user).
    let at = |i: usize| values.get(i).copied().unwrap_or(0);
    Ok(at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

/// A reading at one instant: the machine, the load generator, and the
/// measured process (if any).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// [`machine_busy_ticks`].
    pub machine: u64,
    /// This process's CPU ticks (children it waited for included).
    pub generator: u64,
    /// The measured server's CPU ticks.
    pub server: u64,
    /// The measured server's context switches ([`context_switches`]).
    pub server_switches: u64,
    /// The database server's CPU ticks ([`process_tree_cpu_ticks`]), when
    /// it is a local process the benchmark knows of (a `pg_*` scenario's
    /// throwaway PostgreSQL): not counted as other load.
    pub database: u64,
}

impl Sample {
    /// Reads the machine, this process, and `server` (a pid) if given.
    pub fn take(server: Option<u32>) -> Self {
        Self::take_all(server.as_slice(), None)
    }

    /// Reads the machine, this process, and the sum of `servers` (pids:
    /// the replicas of one measured side), and the database server
    /// `database` (a pid: it and its children) if given.
    pub fn take_all(servers: &[u32], database: Option<u32>) -> Self {
        Self {
            machine: machine_busy_ticks().unwrap_or(0),
            generator: process_cpu_ticks("self").unwrap_or(0),
            server: servers
                .iter()
                .map(|pid| process_cpu_ticks(&pid.to_string()).unwrap_or(0))
                .sum(),
            server_switches: servers.iter().copied().map(context_switches).sum(),
            database: database.map_or(0, process_tree_cpu_ticks),
        }
    }
}

/// CPU use between two samples, in cores (1.0 = one core busy throughout).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    /// The measured server.
    pub server: f64,
    /// The load generator.
    pub generator: f64,
    /// Everything else on the machine (the database server excluded).
    pub other: f64,
    /// The database server, when known ([`Sample::database`]).
    pub database: f64,
    /// The server's CPU time, in microseconds.
    pub server_us: f64,
    /// The server's context switches.
    pub server_switches: u64,
}

impl CpuUse {
    /// The use between `before` and `after`, `elapsed` apart.
    pub fn between(before: Sample, after: Sample, elapsed: Duration) -> Self {
        let ticks = clock_ticks_per_second() as f64 * elapsed.as_secs_f64();
        let machine = after.machine.saturating_sub(before.machine) as f64;
        let generator = after.generator.saturating_sub(before.generator) as f64;
        let server = after.server.saturating_sub(before.server) as f64;
        let database = after.database.saturating_sub(before.database) as f64;
        Self {
            server: server / ticks,
            generator: generator / ticks,
            other: ((machine - generator - server - database) / ticks).max(0.0),
            database: database / ticks,
            server_us: ticks_to_us(after.server.saturating_sub(before.server)),
            server_switches: after.server_switches.saturating_sub(before.server_switches),
        }
    }
}

/// The number of cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Pins the calling thread, and so every thread it starts afterwards, to
/// `core` (call it before any other thread exists).
///
/// # Errors
/// When the affinity cannot be set.
pub fn pin_self(core: usize) -> Result<()> {
    let mut set = CpuSet::new();
    set.set(core)?;
    sched_setaffinity(Pid::from_raw(0), &set)?;
    Ok(())
}

/// The load averages of `/proc/loadavg` (1, 5, 15 minutes), for the record.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(process_cpu_ticks("self").is_ok());
        assert!(rss_kib(std::process::id()).unwrap() > 0);
        assert!(machine_busy_ticks().unwrap() > 0);
        assert!(context_switches(std::process::id()) > 0);
    }

    #[test]
    fn other_load_excludes_the_measured_processes() {
        let ticks = clock_ticks_per_second();
        let before = Sample::default();
        let after = Sample {
            machine: ticks * 3 / 2,
            generator: ticks / 2,
            server: ticks,
            server_switches: 10,
            database: 0,
        };
        let cpu = CpuUse::between(before, after, Duration::from_secs(1));
        assert!((cpu.server - 1.0).abs() < 1e-9);
        assert!((cpu.generator - 0.5).abs() < 1e-9);
        assert!(cpu.other.abs() < 1e-9);
        assert_eq!(cpu.server_switches, 10);
    }
}
