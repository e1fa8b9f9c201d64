//! The warden: one small process per server that kills the process groups
//! of the runs still going when the server dies, however it dies.
//!
//! Linux's parent-death signal would reach a run's leader only, and arming
//! it takes code between fork and exec, which turns every spawn into a full
//! `fork` of the server: measured at about 500 µs more server CPU per exec
//! run (`sessiond-bench --scenario module_exec`). Instead, the first exec
//! run starts `/bin/sh` running [`SCRIPT`], in a process group of its own
//! (a terminal's Ctrl-C does not reach it) and with an empty environment
//! (no setting of sessiond's reaches it). The server writes `+GROUP` on its
//! stdin when a run's process group starts and `-GROUP` once it was killed;
//! when the pipe ends — the server exited, crashed or was killed — the
//! warden kills every group still listed, at once, and exits. Only the
//! server holds the pipe's write end (it is close-on-exec), so modules
//! cannot keep the warden waiting.
//!
//! What the warden cannot cover, the next start does
//! ([`super::process_group::end_left_behind`]): a warden killed together
//! with the server, or a server that died between starting a run's process
//! and telling the warden.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The warden's program: a list of live groups, killed at end of input.
/// Only shell builtins, so it starts nothing while it waits.
const SCRIPT: &str = r#"trap '' INT HUP
live=' '
while read -r op; do
  case $op in
    +*) live="$live${op#+} " ;;
    -*) g=${op#-}
        case $live in *" $g "*) live="${live%% $g *} ${live#* $g }" ;; esac ;;
  esac
done
for g in $live; do kill -9 -$g 2>/dev/null; done
"#;

/// The name the warden's shell gives itself (`$0`), which shows in `ps`.
pub const WARDEN_NAME: &str = "sessiond-warden";

/// This process's warden: `None` when it could not be started.
static WARDEN: OnceLock<Option<Mutex<ChildStdin>>> = OnceLock::new();

/// Tells the warden that process group `group` (a run's) started.
pub(super) fn watch(group: i32) {
    tell('+', group);
}

/// Tells the warden that process group `group` was killed.
pub(super) fn release(group: i32) {
    tell('-', group);
}

fn tell(op: char, group: i32) {
    let Some(stdin) = WARDEN.get_or_init(start).as_ref() else {
        return;
    };
    // One write, so that the warden wakes once per line.
    let line = format!("{op}{group}\n");
    let mut stdin = stdin
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // A few bytes into a pipe the warden keeps reading: does not block.
    if let Err(error) = stdin.write_all(line.as_bytes()) {
        tracing::warn!(%error, "the module process warden is gone: a crash of this server would leave running modules to its next start");
    }
}

fn start() -> Option<Mutex<ChildStdin>> {
    let started = Command::new("/bin/sh")
        .args(["-c", SCRIPT, WARDEN_NAME])
        .env_clear()
        .current_dir("/")
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match started {
        Ok(mut warden) => warden.stdin.take().map(Mutex::new),
        Err(error) => {
            tracing::warn!(%error, "cannot start the module process warden (/bin/sh): a crash of this server would leave running modules to its next start");
            None
        }
    }
}
