//! A run's processes: each exec run is a process group, which ends with
//! its run.
//!
//! - The module's process leads a group of its own, so that everything it
//!   starts (and does not move out of the group on purpose) can be
//!   signalled at once.
//! - When a run concludes, is cancelled or times out, its whole group gets
//!   SIGKILL ([`ProcessGroup::kill`], also on drop): a child the module
//!   left behind does not outlive the run.
//! - When sessiond dies, however it dies, the [`super::warden`] kills the
//!   groups of the runs that were going, at once.
//! - So that no group outlives a crash even when the warden died too, each
//!   run's group is recorded in the store ([`crate::model::RunProcess`])
//!   before the module is given its parameters, and the next start of the
//!   node kills the groups its runs left ([`end_left_behind`]) before it
//!   records those runs as interrupted: the groups whose leader is still
//!   the process that was recorded (same boot, same start time: a reused
//!   pid is never signalled), and those whose leader is gone but whose
//!   members remain.
//!
//! What a process can escape: a group (`setsid`, `setpgid`) — only a cgroup
//! per run would hold those.

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::Command;

use super::warden;
use crate::model::{Result, RunId, RunProcess};
use crate::store::RunStore;

/// Makes the command's process lead a new process group. (Nothing runs
/// between fork and exec, so the spawn stays a `posix_spawn`.)
pub(super) fn contain(command: &mut Command) {
    command.process_group(0);
}

/// The process group of a running run: killed (SIGKILL) when the run is
/// over, at the latest when this is dropped (a run whose future was
/// dropped).
#[derive(Debug)]
pub(super) struct ProcessGroup {
    /// The group's id: its leader's pid.
    id: Pid,
    /// Whether the group was killed already.
    killed: bool,
}

impl ProcessGroup {
    /// The group led by the process `pid`, which the [`warden`] is told
    /// of (and told again once [`ProcessGroup::kill`] killed it).
    pub(super) fn led_by(pid: u32) -> Option<Self> {
        let id = i32::try_from(pid).ok().filter(|&pid| pid > 1)?;
        warden::watch(id);
        Some(Self {
            id: Pid::from_raw(id),
            killed: false,
        })
    }

    /// What identifies this group across a restart of sessiond; `None`
    /// where `/proc` does not say.
    pub(super) fn identify(&self) -> Option<RunProcess> {
        let stat = Stat::of(self.id.as_raw())?;
        Some(RunProcess {
            boot_id: boot_id()?,
            group: self.id.as_raw(),
            start_ticks: stat.start_ticks,
        })
    }

    /// Sends `signal` to every process of the group.
    pub(super) fn signal(&self, signal: Signal) {
        if !self.killed {
            let _ = killpg(self.id, signal);
        }
    }

    /// Kills every process of the group that is still there.
    pub(super) fn kill(&mut self) {
        if !self.killed {
            self.signal(Signal::SIGKILL);
            self.killed = true;
            warden::release(self.id.as_raw());
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // A system call that does not block: allowed in a drop.
        self.kill();
    }
}

/// Kills the process groups the runs of `node` left behind when its
/// previous process died, and forgets them; returns how many processes it
/// killed. Called at start-up, before recovery records those runs as
/// interrupted.
///
/// # Errors
/// [`crate::Error::StoreUnavailable`] when the records cannot be read or
/// cleared.
pub async fn end_left_behind(store: &dyn RunStore, node: &str) -> Result<usize> {
    let recorded = store.run_processes_of_node(node).await?;
    if recorded.is_empty() {
        return Ok(0);
    }
    let mut killed = 0;
    for (run_id, process) in &recorded {
        let count = kill_left_behind(process);
        if count > 0 {
            tracing::warn!(run_id = %run_id, process_group = process.group, processes = count, "killed the processes of a run its server left behind");
        }
        killed += count;
    }
    let runs: Vec<RunId> = recorded.into_iter().map(|(run, _)| run).collect();
    store.forget_run_processes(&runs).await?;
    Ok(killed)
}

/// Kills what is left of the recorded group `process`, if it is still the
/// group that was recorded; returns how many processes were in it.
pub fn kill_left_behind(process: &RunProcess) -> usize {
    if boot_id().as_deref() != Some(process.boot_id.as_str()) {
        // Rebooted since: nothing of that boot runs any more.
        return 0;
    }
    let group = process.group;
    let members = group_members(group);
    let ours = match Stat::of(group) {
        // The leader is alive: it must be the very process recorded.
        Some(leader) if leader.is_alive() => leader.start_ticks == process.start_ticks,
        // The leader is gone. Its pid cannot have been reused as another
        // group's id while members of its group remain, and those started
        // after it.
        _ => members
            .iter()
            .all(|member| member.start_ticks >= process.start_ticks),
    };
    if !ours || members.is_empty() {
        return 0;
    }
    let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
    // A leader that moved to another group dies too.
    if Stat::of(group).is_some_and(|leader| leader.is_alive()) {
        let _ = kill(Pid::from_raw(group), Signal::SIGKILL);
    }
    members.len()
}

/// Reads what is in a non-blocking pipe now, without waiting for its end
/// (which a process still holding the pipe would put off): appends to
/// `into` and returns whether the end was reached.
pub(super) fn read_buffered(pipe: impl AsFd, into: &mut Vec<u8>) -> bool {
    let mut chunk = [0_u8; 8192];
    loop {
        match nix::unistd::read(&pipe, &mut chunk) {
            Ok(0) => return true,
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
}

/// The living processes of process group `group`.
fn group_members(group: i32) -> Vec<Stat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(Stat::of)
        .filter(|stat| stat.group == group && stat.is_alive())
        .collect()
}

/// The kernel's id of this boot.
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_owned()).filter(|id| !id.is_empty())
}

/// What `/proc/PID/stat` says of a process.
#[derive(Clone, Copy, Debug)]
struct Stat {
    /// Its state (`Z`: a zombie, dead but not reaped).
    state: u8,
    /// Its process group.
    group: i32,
    /// When it started, in clock ticks after boot.
    start_ticks: u64,
}

impl Stat {
    /// The process `pid`, if there is one.
    fn of(pid: i32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Self::parse(&text)
    }

    /// Parses a `stat` line: the fields after the command's name, which is
    /// in parentheses and may hold anything.
    fn parse(text: &str) -> Option<Self> {
        let fields: Vec<&str> = text
            .get(text.rfind(')')? + 1..)?
            .split_whitespace()
            .collect();
        // Field 3 is the state, 5 the process group, 22 the start time.
        Some(Self {
            state: *fields.first()?.as_bytes().first()?,
            group: fields.get(2)?.parse().ok()?,
            start_ticks: fields.get(19)?.parse().ok()?,
        })
    }

    fn is_alive(&self) -> bool {
        !matches!(self.state, b'Z' | b'X')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_whatever_the_command_is_called() {
        let line = "4242 (a (tricky) name) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 \
                    1 0 987654 1000 100 18446744073709551615";
        let stat = Stat::parse(line).unwrap();
        assert_eq!(
            (stat.state, stat.group, stat.start_ticks),
            (b'S', 4240, 987_654)
        );
        assert!(Stat::parse("4242 (cut").is_none());
    }

    #[test]
    fn this_process_is_identified_and_a_stale_record_kills_nothing() {
        let me = Stat::of(std::process::id().try_into().unwrap()).unwrap();
        assert!(me.is_alive());
        let stale = RunProcess {
            boot_id: boot_id().unwrap(),
            group: me.group,
            start_ticks: u64::MAX,
        };
        // This test's own group, recorded with a start time after its
        // leader's and its members': left alone.
        assert_eq!(kill_left_behind(&stale), 0);
        let other_boot = RunProcess {
            boot_id: "another-boot".to_owned(),
            ..stale
        };
        assert_eq!(kill_left_behind(&other_boot), 0);
    }
}
