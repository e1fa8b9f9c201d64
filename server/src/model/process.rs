//! The process group of a running exec-module run, as recorded so that the
//! next start of its server can end what a crash left behind.

use std::fmt;
use std::str::FromStr;

/// Which process group a run's processes are in, and how to tell that group
/// from a later one that reuses its number: the leader's start time (in
/// clock ticks after boot, `/proc/PID/stat` field 22) and the boot it
/// started in. Stored as text, `BOOT_ID PGID START_TICKS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunProcess {
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`): no process
    /// outlives a reboot, and start times count from the boot.
    pub boot_id: String,
    /// The process group: the leader's pid.
    pub group: i32,
    /// When the leader started, in clock ticks after boot.
    pub start_ticks: u64,
}

impl fmt::Display for RunProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.boot_id, self.group, self.start_ticks)
    }
}

/// A stored [`RunProcess`] that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("not a run's process record: {0:?}")]
pub struct BadRunProcess(String);

impl FromStr for RunProcess {
    type Err = BadRunProcess;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadRunProcess(text.to_owned());
        let mut parts = text.split(' ');
        let (Some(boot_id), Some(group), Some(start_ticks), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let group: i32 = group.parse().map_err(|_| bad())?;
        if group <= 1 || boot_id.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            boot_id: boot_id.to_owned(),
            group,
            start_ticks: start_ticks.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_as_written_and_nonsense_is_refused() {
        let process = RunProcess {
            boot_id: "4f1c1e9a-5b7e-4d8e-9d43-0c2f1a6b7e11".to_owned(),
            group: 4242,
            start_ticks: 987_654,
        };
        assert_eq!(process.to_string().parse::<RunProcess>().unwrap(), process);
        for bad in [
            "",
            "boot 12",
            "boot 1 5",
            "boot x 5",
            "boot 12 5 6",
            " 12 5",
        ] {
            assert!(bad.parse::<RunProcess>().is_err(), "{bad:?}");
        }
    }
}
