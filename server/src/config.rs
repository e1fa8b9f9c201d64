//! Server configuration: command-line flags, `SESSIOND_*` environment
//! variables and an optional TOML file, in that order of precedence, over
//! built-in defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The command line of the `sessiond` binary. Each flag can also be set by
/// the environment variable it names.
#[derive(Debug, clap::Parser)]
#[command(
    name = "sessiond",
    version,
    about = "The sessiond session authority (gRPC)."
)]
pub struct Args {
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, env = "SESSIOND_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Database URL: sqlite://PATH [default: sqlite://sessiond.db].
    #[arg(long, env = "SESSIOND_DATABASE")]
    pub database: Option<String>,
    /// A TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "SESSIOND_CONFIG")]
    pub config: Option<PathBuf>,
    /// This server's node id, recorded as the owner of the sessions it opens
    /// [default: local].
    #[arg(long, env = "SESSIOND_NODE_ID")]
    pub node_id: Option<String>,
    /// How long in-flight calls may take to finish at shutdown, e.g. "10s"
    /// [default: 10s].
    #[arg(long, env = "SESSIOND_DRAIN_TIMEOUT", value_parser = humantime::parse_duration)]
    pub drain_timeout: Option<Duration>,
    /// The most open sessions one user may have; 0: no limit [default: 1000].
    #[arg(long, env = "SESSIOND_MAX_OPEN_SESSIONS_PER_USER")]
    pub max_open_sessions_per_user: Option<u32>,
}

/// The TOML configuration file: the same settings as [`Args`] (durations as
/// strings such as "10s"), plus `max_message_bytes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database: Option<String>,
    node_id: Option<String>,
    drain_timeout: Option<String>,
    max_open_sessions_per_user: Option<u32>,
    max_message_bytes: Option<usize>,
}

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The database URL (`sqlite://PATH`).
    pub database: String,
    /// This server's node id.
    pub node_id: String,
    /// How long in-flight calls may take to finish at shutdown.
    pub drain_timeout: Duration,
    /// The most open sessions one user may have; `None`: no limit.
    pub max_open_sessions_per_user: Option<u32>,
    /// The largest request message accepted, in bytes; larger ones are
    /// refused with OUT_OF_RANGE before they are buffered.
    pub max_message_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            database: "sqlite://sessiond.db".to_owned(),
            node_id: "local".to_owned(),
            drain_timeout: Duration::from_secs(10),
            max_open_sessions_per_user: Some(1000),
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}

impl Config {
    /// Merges flags and environment (already in `args`) over the file that
    /// `args.config` names, over the defaults.
    ///
    /// # Errors
    /// [`ConfigError`] when the file cannot be read or is invalid.
    pub fn load(args: Args) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let file_path = args.config.clone().unwrap_or_default();
        let file_drain = file
            .drain_timeout
            .as_deref()
            .map(humantime::parse_duration)
            .transpose()
            .map_err(|e| ConfigError::Invalid {
                path: file_path.clone(),
                message: format!("drain_timeout: {e}"),
            })?;
        let defaults = Self::default();
        let limit = args
            .max_open_sessions_per_user
            .or(file.max_open_sessions_per_user)
            .or(defaults.max_open_sessions_per_user);
        Ok(Self {
            listen: args.listen.or(file.listen).unwrap_or(defaults.listen),
            database: args.database.or(file.database).unwrap_or(defaults.database),
            node_id: args.node_id.or(file.node_id).unwrap_or(defaults.node_id),
            drain_timeout: args
                .drain_timeout
                .or(file_drain)
                .unwrap_or(defaults.drain_timeout),
            max_open_sessions_per_user: limit.filter(|&n| n > 0),
            max_message_bytes: file.max_message_bytes.unwrap_or(defaults.max_message_bytes),
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessiond.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:6000\"\nnode_id = \"from-file\"\ndrain_timeout = \"3s\"\n",
        )
        .unwrap();
        let args = Args::try_parse_from([
            "sessiond",
            "--config",
            path.to_str().unwrap(),
            "--node-id",
            "from-flag",
        ])
        .unwrap();
        let config = Config::load(args).unwrap();
        assert_eq!(config.listen, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(config.node_id, "from-flag");
        assert_eq!(config.drain_timeout, Duration::from_secs(3));
        assert_eq!(config.database, "sqlite://sessiond.db");
    }

    #[test]
    fn an_unknown_key_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listen_addr = \"x\"\n").unwrap();
        let args = Args::try_parse_from(["sessiond", "--config", path.to_str().unwrap()]).unwrap();
        let error = Config::load(args).unwrap_err().to_string();
        assert!(error.contains("bad.toml"), "{error}");
        assert!(error.contains("listen_addr"), "{error}");
    }

    #[test]
    fn a_zero_session_limit_means_none() {
        let args = Args::try_parse_from(["sessiond", "--max-open-sessions-per-user", "0"]).unwrap();
        assert_eq!(Config::load(args).unwrap().max_open_sessions_per_user, None);
    }
}
