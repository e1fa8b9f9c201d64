//! The exec-module manifest: a TOML file mapping module ids to commands.
//!
//! ```toml
//! [modules."100000"]
//! command = ["python3", "modules/report.py"]   # argv, no shell
//! timeout = "60s"                              # longest run; default 5 min
//! max_output_bytes = 1048576                   # stdout cap; default 1 MiB
//! # user = "reports"                           # run as this account (sessiond as root only)
//! # group = "reports"                          # and this group; default: the user's
//! ```
//!
//! Relative paths in `command` are resolved against the manifest's folder,
//! which is also each run's working directory. Every problem is reported
//! with the file and the module it concerns, before the server starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::ModuleRegistry;
use super::exec::{ExecModule, RunAs};
use crate::model::ModuleId;

/// The longest run of an exec module unless its entry says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest standard output an exec module may produce unless its entry
/// says otherwise.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    modules: BTreeMap<String, Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    command: Vec<String>,
    timeout: Option<String>,
    max_output_bytes: Option<usize>,
    user: Option<String>,
    group: Option<String>,
}

/// A manifest that cannot be used, naming the file, the module and the
/// problem.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{problem}", path.display(), module.as_ref().map(|m| format!("module \"{m}\": ")).unwrap_or_default())]
pub struct ManifestError {
    /// The manifest file.
    pub path: PathBuf,
    /// The module concerned, when the problem is in one entry.
    pub module: Option<String>,
    /// What is wrong.
    pub problem: String,
}

/// Reads the manifest at `path` and registers each of its modules in
/// `registry`.
///
/// # Errors
/// [`ManifestError`] when the file cannot be read or parsed, or an entry has
/// an invalid id, an empty command, a command that does not exist, an
/// invalid timeout, or a `user` or `group` that does not exist or that
/// sessiond, not running as root, cannot switch to.
pub fn load(path: &Path, registry: &mut ModuleRegistry) -> Result<(), ManifestError> {
    let problem = |module: Option<&str>, problem: String| ManifestError {
        path: path.to_owned(),
        module: module.map(str::to_owned),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| problem(None, e.to_string()))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| problem(None, e.to_string()))?;
    // A bare file name's parent is "", which no process can start in.
    let folder = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    for (id, entry) in manifest.modules {
        let module_id = ModuleId::parse("module id", id.clone())
            .map_err(|v| problem(Some(&id), format!("the id {}", v.description)))?;
        let Some(program) = entry.command.first() else {
            return Err(problem(Some(&id), "command is empty".to_owned()));
        };
        let program = resolve_program(program, &folder)
            .ok_or_else(|| problem(Some(&id), format!("command not found: {program}")))?;
        let timeout = match entry.timeout.as_deref() {
            None => DEFAULT_TIMEOUT,
            Some(text) => humantime::parse_duration(text)
                .ok()
                .filter(|t| !t.is_zero())
                .ok_or_else(|| {
                    problem(
                        Some(&id),
                        format!("timeout {text:?} is not a duration such as \"60s\""),
                    )
                })?,
        };
        let run_as = run_as(entry.user.as_deref(), entry.group.as_deref())
            .map_err(|message| problem(Some(&id), message))?;
        let module = ExecModule {
            program,
            args: entry.command[1..].to_vec(),
            working_dir: folder.clone(),
            timeout,
            max_output_bytes: entry.max_output_bytes.unwrap_or(DEFAULT_MAX_OUTPUT_BYTES),
            run_as,
        };
        registry.register(module_id, Arc::new(module));
    }
    Ok(())
}

/// The account an entry's `user` and `group` (names or numeric ids) name;
/// `None` when it names none.
fn run_as(user: Option<&str>, group: Option<&str>) -> Result<Option<RunAs>, String> {
    use nix::unistd::{Gid, Group, Uid, User};
    let Some(user) = user else {
        return match group {
            Some(_) => Err("group needs a user to run as".to_owned()),
            None => Ok(None),
        };
    };
    if !Uid::effective().is_root() {
        return Err(format!(
            "user {user:?}: sessiond can run modules as another user only when it runs as root"
        ));
    }
    let account = match user.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(user),
    }
    .map_err(|e| format!("user {user:?}: {e}"))?
    .ok_or_else(|| format!("user {user:?} does not exist"))?;
    let gid = match group {
        None => account.gid,
        Some(group) => {
            match group.parse::<u32>() {
                Ok(gid) => Group::from_gid(Gid::from_raw(gid)),
                Err(_) => Group::from_name(group),
            }
            .map_err(|e| format!("group {group:?}: {e}"))?
            .ok_or_else(|| format!("group {group:?} does not exist"))?
            .gid
        }
    };
    Ok(Some(RunAs {
        uid: account.uid.as_raw(),
        gid: gid.as_raw(),
    }))
}

/// Finds a command's program: a path (relative ones against `folder`), or a
/// bare name on `PATH`.
fn resolve_program(program: &str, folder: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let path = folder.join(program);
        return path.is_file().then_some(path);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<ModuleRegistry, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("modules.toml");
        std::fs::write(&path, text).unwrap();
        let mut registry = ModuleRegistry::default();
        load(&path, &mut registry).map_err(|e| e.to_string())?;
        Ok(registry)
    }

    #[test]
    fn a_valid_manifest_registers_every_module() {
        let registry = load_text(
            "[modules.\"100000\"]\ncommand = [\"sh\", \"-c\", \"echo 1\"]\ntimeout = \"60s\"\n\
             [modules.other]\ncommand = [\"true\"]\n",
        )
        .unwrap();
        assert_eq!(registry.len(), 2);
        assert!(
            registry
                .get(&ModuleId::from_store("100000".into()))
                .is_some()
        );
    }

    #[test]
    fn problems_name_the_file_the_module_and_the_problem() {
        let error = load_text("[modules.broken]\ncommand = []\n").unwrap_err();
        assert!(error.contains("modules.toml"), "{error}");
        assert!(error.contains("module \"broken\""), "{error}");
        assert!(error.contains("command is empty"), "{error}");

        let error = load_text("[modules.gone]\ncommand = [\"./no-such-program\"]\n").unwrap_err();
        assert!(
            error.contains("module \"gone\": command not found"),
            "{error}"
        );

        let error =
            load_text("[modules.slow]\ncommand = [\"true\"]\ntimeout = \"soon\"\n").unwrap_err();
        assert!(error.contains("module \"slow\": timeout"), "{error}");

        let error = load_text("[modules.x]\ncommand = [\"true\"]\nshell = true\n").unwrap_err();
        assert!(error.contains("shell"), "{error}");

        let error =
            load_text("[modules.x]\ncommand = [\"true\"]\ngroup = \"nogroup\"\n").unwrap_err();
        assert!(error.contains("group needs a user"), "{error}");
        let error = load_text("[modules.x]\ncommand = [\"true\"]\nuser = \"no-such-user-x\"\n")
            .unwrap_err();
        assert!(
            error.contains("module \"x\": user \"no-such-user-x\""),
            "{error}"
        );
    }
}
