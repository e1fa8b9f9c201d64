//! Where PostgreSQL's programs are: on `PATH`, else in the newest
//! `/usr/lib/postgresql/*/bin` (where Debian installs the server).
//!
//! Standard library only: the root package's build script compiles this
//! file too (`build/prerequisites.rs`, through `#[path]`), to decide at
//! build time whether the PostgreSQL tests can run, by the rule they find
//! their programs with at run time.

use std::path::{Path, PathBuf};

/// `name` on `PATH`, else in the newest `/usr/lib/postgresql/*/bin`.
///
/// # Errors
/// When it is in neither.
pub fn find_program(name: &str) -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    // Newest first: "15" before "9.6".
    versions.sort_by_key(|dir| {
        let version = dir
            .parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0);
        std::cmp::Reverse(version)
    });
    on_path
        .into_iter()
        .chain(versions)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("`{name}` is neither on PATH nor in /usr/lib/postgresql/*/bin"))
}
