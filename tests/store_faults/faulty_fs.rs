//! A faulty file system under the real binary: `faulty_fs.c`, compiled
//! with `gcc` once per test process and loaded into `sessiond` with
//! `LD_PRELOAD`, makes its flushes or writes fail (or its flushes slow)
//! while a control file names the fault.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The C source of the shim.
const SOURCE: &str = include_str!("faulty_fs.c");

/// A fault the shim injects: the word the control file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `fsync` and `fdatasync` fail with EIO.
    FsyncFails,
    /// `fsync` and `fdatasync` take 100 ms longer.
    FsyncSlow,
    /// Writes to regular files fail with EIO.
    WriteFails,
    /// Writes to regular files fail with ENOSPC.
    DiskFull,
}

impl Fault {
    fn word(self) -> &'static str {
        match self {
            Self::FsyncFails => "fsync-eio",
            Self::FsyncSlow => "fsync-slow",
            Self::WriteFails => "write-eio",
            Self::DiskFull => "write-enospc",
        }
    }
}

/// The shared object, built once per test process.
fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("sessiond-faulty-fs-")
            .tempdir()
            .unwrap()
            .keep();
        let source = dir.join("faulty_fs.c");
        let object = dir.join("libfaulty_fs.so");
        std::fs::write(&source, SOURCE).unwrap();
        let output = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
            .arg(&object)
            .arg(&source)
            .arg("-ldl")
            .output()
            .expect("running gcc, which builds the faulty file system (is gcc installed?)");
        assert!(
            output.status.success(),
            "gcc failed to build the faulty file system: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        object
    })
}

/// The faulty file system of one server process: where its control file
/// goes, and the environment that loads the shim.
pub struct FaultyFs {
    /// The control file.
    control: PathBuf,
}

impl FaultyFs {
    /// A file system without a fault yet, controlled from `dir`.
    pub fn new(dir: &Path) -> Self {
        shim();
        Self {
            control: dir.join("fault"),
        }
    }

    /// The variables that load the shim into a process.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".to_owned(), shim().display().to_string()),
            (
                "FAULTY_FS_CONTROL".to_owned(),
                self.control.display().to_string(),
            ),
        ]
    }

    /// Every call meets `fault` from now on.
    pub fn inject(&self, fault: Fault) {
        // Written beside it and renamed: the shim never reads half a word.
        let next = self.control.with_extension("next");
        std::fs::write(&next, fault.word()).unwrap();
        std::fs::rename(&next, &self.control).unwrap();
    }

    /// The fault is gone.
    pub fn clear(&self) {
        std::fs::remove_file(&self.control).unwrap();
    }
}
