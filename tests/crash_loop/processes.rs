//! Module processes, found in `/proc`: every process whose working
//! directory is the test's modules folder is a run's (a run's working
//! directory is its manifest's folder, and whatever a module starts
//! inherits it). A process is named by its pid and its start time, so that
//! a reused pid is never taken for the process that had it before.

use std::path::Path;

/// A process: its pid and its start time (clock ticks since boot), with
/// its parent and process group when it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Process {
    pub pid: i32,
    pub started: u64,
    pub parent: i32,
    pub group: i32,
}

/// The live (not zombie) processes whose working directory is `dir`.
pub fn in_dir(dir: &Path) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<Process> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
        .filter_map(stat)
        .collect();
    found.sort_unstable();
    found
}

/// Whether `process` is still alive (the same process: same start time,
/// not a zombie).
pub fn alive(process: Process) -> bool {
    stat(process.pid).is_some_and(|now| now.started == process.started)
}

/// The processes of the runs node process `node` had started: the members
/// of every group in `found` whose leader is its child.
pub fn of_node(found: &[Process], node: i32) -> Vec<Process> {
    let groups: Vec<i32> = found
        .iter()
        .filter(|p| p.pid == p.group && p.parent == node)
        .map(|p| p.group)
        .collect();
    found
        .iter()
        .filter(|p| groups.contains(&p.group))
        .copied()
        .collect()
}

/// The process `pid` if it is alive.
fn stat(pid: i32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after it.
    let (_, rest) = stat.rsplit_once(") ")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&("Z" | "X"))) {
        return None;
    }
    // Fields 4 (ppid), 5 (pgrp) and 22 (starttime) are the 2nd, 3rd and
    // 20th after the command name.
    let number = |n: usize| fields.get(n)?.parse::<u64>().ok();
    Some(Process {
        pid,
        started: number(19)?,
        parent: i32::try_from(number(1)?).ok()?,
        group: i32::try_from(number(2)?).ok()?,
    })
}

/// Kills what a failed test left running.
pub struct Cleanup<'a>(pub &'a Path);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for process in in_dir(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(process.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
