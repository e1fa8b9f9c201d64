//! Server configuration: command-line flags, `SESSIOND_*` environment
//! variables and an optional TOML file, in that order of precedence, over
//! built-in defaults.
//!
//! Every setting has the same name everywhere: `--close-grace` on the
//! command line is `SESSIOND_CLOSE_GRACE` in the environment and
//! `close_grace` in the file. Durations are written like `30s`, `5m`, `1h`.
//! The security settings are in [`security`] (the file's `[security]`
//! table).

pub mod security;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::telemetry::logging::LogFormat;
use serde::{Deserialize, Deserializer};

use security::{SecurityConfig, SecuritySettings};

/// The command line of the `sessiond` binary.
#[derive(Debug, clap::Parser)]
#[command(
    name = "sessiond",
    version,
    about = "The sessiond session authority (gRPC)."
)]
pub struct Args {
    /// A TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "SESSIOND_CONFIG")]
    pub config: Option<PathBuf>,
    /// The settings given as flags or environment variables.
    #[command(flatten)]
    pub settings: Settings,
    /// A command other than serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The `sessiond` commands besides serving (the default).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Manage the static bearer tokens of `--tokens FILE`.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `sessiond token …`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a new random token for SUBJECT: print it once on stdout, and
    /// append only its SHA-256 hash, the subject and the groups to FILE.
    Create {
        /// The tokens file (created with mode 0600 if missing).
        #[arg(long, value_name = "FILE")]
        tokens: PathBuf,
        /// Whom the token authenticates.
        #[arg(long)]
        subject: String,
        /// A group the subject is in (repeat for several).
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
    },
}

/// The settings, each optional: what a flag, the environment or the file
/// leaves unset falls back to the next source, then to [`Config::default`].
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on, IP:PORT or HOST:PORT [default: 127.0.0.1:50051].
    #[arg(long, env = "SESSIOND_LISTEN", value_parser = listen_address)]
    #[serde(default, deserialize_with = "listen")]
    pub listen: Option<SocketAddr>,
    /// Database URL: sqlite://PATH (created if missing) or
    /// postgres://USER:PASSWORD@HOST/DB [default: sqlite://sessiond.db].
    #[arg(long, env = "SESSIOND_DATABASE")]
    pub database: Option<String>,
    /// A file holding the PostgreSQL password (its first line), read at
    /// start: keeps the password out of the URL, the command line and the
    /// environment [default: none].
    #[arg(long, env = "SESSIOND_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,
    /// The exec-module manifest (TOML) [default: none].
    #[arg(long, env = "SESSIOND_MODULES")]
    pub modules: Option<PathBuf>,
    /// This server's node id, recorded as the owner of the sessions it opens;
    /// replicas sharing a database need distinct ids [default: HOSTNAME-HASH,
    /// stable per host and working directory].
    #[arg(long, env = "SESSIOND_NODE_ID")]
    pub node_id: Option<String>,
    /// Where other replicas reach this one, e.g. http://10.0.0.7:50051
    /// [default: http:// and the bound address].
    #[arg(long, env = "SESSIOND_ADVERTISE")]
    pub advertise: Option<String>,
    /// How long this node's lease lasts without renewal; a replica whose
    /// lease expired is lost and its clientless sessions end [default: 15s].
    #[arg(long, env = "SESSIOND_LEASE_TTL", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "duration")]
    pub lease_ttl: Option<Duration>,
    /// How long in-flight calls may take to finish at shutdown [default: 10s].
    #[arg(long, env = "SESSIOND_DRAIN_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "duration")]
    pub drain_timeout: Option<Duration>,
    /// How long running modules may take to conclude when a clientless
    /// session closes without a grace of its own [default: 30s].
    #[arg(long, env = "SESSIOND_CLOSE_GRACE", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "duration")]
    pub close_grace: Option<Duration>,
    /// How long running modules may take to conclude when the server shuts
    /// down [default: 10s].
    #[arg(long, env = "SESSIOND_SHUTDOWN_GRACE", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "duration")]
    pub shutdown_grace: Option<Duration>,
    /// End clientless sessions idle (no activity, no running module) this
    /// long; 0 turns it off [default: 30m].
    #[arg(long, env = "SESSIOND_IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "duration")]
    pub idle_timeout: Option<Duration>,
    /// End clientless sessions older than this; 0 turns it off
    /// [default: 24h].
    #[arg(long, env = "SESSIOND_MAX_LIFETIME", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "duration")]
    pub max_lifetime: Option<Duration>,
    /// How often idle and old sessions are looked for [default: 5s].
    #[arg(long, env = "SESSIOND_REAPER_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "duration")]
    pub reaper_interval: Option<Duration>,
    /// Keep events of the log this long; older ones are compacted away (a
    /// checkpoint keeps the rest verifiable); 0 keeps them forever
    /// [default: 90d].
    #[arg(long, env = "SESSIOND_EVENT_RETENTION", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "duration")]
    pub event_retention: Option<Duration>,
    /// How long an idle watch waits before it sends a progress revision
    /// [default: 5s].
    #[arg(long, env = "SESSIOND_WATCH_PROGRESS_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "duration")]
    pub watch_progress_interval: Option<Duration>,
    /// How often the event log is read for events other replicas committed
    /// [default: 100ms].
    #[arg(long, env = "SESSIOND_EVENT_POLL_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, deserialize_with = "duration")]
    pub event_poll_interval: Option<Duration>,
    /// How many batches of new events are kept for watches that have not
    /// received them yet; a watch that falls further behind (its caller
    /// reads too slowly) ends with WATCH_TOO_SLOW and resumes [default:
    /// 1024].
    #[arg(long, env = "SESSIOND_WATCH_BUFFER")]
    pub watch_buffer: Option<usize>,
    /// How many sessions are kept in memory for lookups (their user and
    /// owner; on SQLite also their records); one not kept is read from the
    /// database on its next lookup [default: 65536].
    #[arg(long, env = "SESSIOND_CACHED_SESSIONS")]
    pub cached_sessions: Option<usize>,
    /// The most open sessions one user may have; 0: no limit [default: 1000].
    #[arg(long, env = "SESSIOND_MAX_OPEN_SESSIONS_PER_USER")]
    pub max_open_sessions_per_user: Option<u32>,
    /// The most modules running at once in one session [default: 16].
    #[arg(long, env = "SESSIOND_MAX_RUNNING_MODULES_PER_SESSION")]
    pub max_running_modules_per_session: Option<u32>,
    /// The most modules running at once in the server [default: 256].
    #[arg(long, env = "SESSIOND_MAX_RUNNING_MODULES")]
    pub max_running_modules: Option<u32>,
    /// The largest request message accepted, in bytes [default: 1048576].
    #[arg(long, env = "SESSIOND_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
    /// Serve /metrics (Prometheus), /healthz, /readyz and the web console
    /// (/) over plain HTTP on this address, IP:PORT or HOST:PORT; empty
    /// turns it off [default: 127.0.0.1:9464].
    #[arg(long, env = "SESSIOND_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// How log lines are written: text, or json (one object per line)
    /// [default: text]. RUST_LOG filters them (default: info).
    #[arg(long, env = "SESSIOND_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Export traces over OTLP/gRPC to this collector, e.g.
    /// http://127.0.0.1:4317 (a sessiond built with the `otlp` feature)
    /// [default: none].
    #[arg(long, env = "SESSIOND_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// Authentication, the access policy, TLS.
    #[command(flatten)]
    #[serde(default)]
    pub security: SecuritySettings,
}

/// An address to listen on: `IP:PORT`, or `HOST:PORT` resolved to its first
/// address (`localhost:50051`).
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    text.to_socket_addrs()
        .map_err(|e| {
            format!("{text:?} is not an address to listen on (IP:PORT or HOST:PORT): {e}")
        })?
        .next()
        .ok_or_else(|| format!("{text:?} resolves to no address"))
}

fn listen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(deserializer)?;
    listen_address(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text)
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration: {e}")))
}

impl Settings {
    /// Each setting from `self`, or else from `fallback`.
    fn or(self, fallback: Self) -> Self {
        Self {
            listen: self.listen.or(fallback.listen),
            database: self.database.or(fallback.database),
            database_password_file: self
                .database_password_file
                .or(fallback.database_password_file),
            modules: self.modules.or(fallback.modules),
            node_id: self.node_id.or(fallback.node_id),
            advertise: self.advertise.or(fallback.advertise),
            lease_ttl: self.lease_ttl.or(fallback.lease_ttl),
            drain_timeout: self.drain_timeout.or(fallback.drain_timeout),
            close_grace: self.close_grace.or(fallback.close_grace),
            shutdown_grace: self.shutdown_grace.or(fallback.shutdown_grace),
            idle_timeout: self.idle_timeout.or(fallback.idle_timeout),
            max_lifetime: self.max_lifetime.or(fallback.max_lifetime),
            reaper_interval: self.reaper_interval.or(fallback.reaper_interval),
            event_retention: self.event_retention.or(fallback.event_retention),
            watch_progress_interval: self
                .watch_progress_interval
                .or(fallback.watch_progress_interval),
            event_poll_interval: self.event_poll_interval.or(fallback.event_poll_interval),
            watch_buffer: self.watch_buffer.or(fallback.watch_buffer),
            cached_sessions: self.cached_sessions.or(fallback.cached_sessions),
            max_open_sessions_per_user: self
                .max_open_sessions_per_user
                .or(fallback.max_open_sessions_per_user),
            max_running_modules_per_session: self
                .max_running_modules_per_session
                .or(fallback.max_running_modules_per_session),
            max_running_modules: self.max_running_modules.or(fallback.max_running_modules),
            max_message_bytes: self.max_message_bytes.or(fallback.max_message_bytes),
            admin_listen: self.admin_listen.or(fallback.admin_listen),
            log_format: self.log_format.or(fallback.log_format),
            otlp_endpoint: self.otlp_endpoint.or(fallback.otlp_endpoint),
            security: self.security.or(fallback.security),
        }
    }
}

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The database URL (`sqlite://PATH`).
    pub database: String,
    /// A file holding the PostgreSQL password, if it is not in the URL.
    pub database_password_file: Option<PathBuf>,
    /// The exec-module manifest, if any.
    pub modules: Option<PathBuf>,
    /// This server's node id.
    pub node_id: String,
    /// Where other replicas reach this one; `None`: `http://` and the bound
    /// address.
    pub advertise: Option<String>,
    /// How long this node's lease lasts without renewal.
    pub lease_ttl: Duration,
    /// How long in-flight calls may take to finish at shutdown.
    pub drain_timeout: Duration,
    /// The default grace of a clientless session's close.
    pub close_grace: Duration,
    /// The grace running modules get when the server shuts down.
    pub shutdown_grace: Duration,
    /// Idle clientless sessions end after this; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Clientless sessions end at this age; `None`: never.
    pub max_lifetime: Option<Duration>,
    /// How often expired sessions are looked for.
    pub reaper_interval: Duration,
    /// Events older than this are compacted away; `None`: kept forever.
    pub event_retention: Option<Duration>,
    /// How long an idle watch waits before it sends progress.
    pub watch_progress_interval: Duration,
    /// How often the log is read for other replicas' events.
    pub event_poll_interval: Duration,
    /// Whether changes are recorded in the event log. Always on but in
    /// code that measures what the log costs (`sessiond-bench`): without
    /// it the server keeps no evidence and its watches see nothing. Not a
    /// flag or a file setting.
    pub record_events: bool,
    /// How many batches of new events the feed keeps for watches that are
    /// behind (at least 1); a watch further behind ends with
    /// `WATCH_TOO_SLOW`.
    pub watch_buffer: usize,
    /// How many sessions the server keeps in memory (what bounds its
    /// memory however many sessions it served): the facts `GetSessionUser`
    /// and routing read, and on SQLite the store's session records. A
    /// session not kept is read from the database on its next lookup.
    pub cached_sessions: usize,
    /// The most open sessions one user may have; `None`: no limit.
    pub max_open_sessions_per_user: Option<u32>,
    /// The most modules running at once in one session.
    pub max_running_modules_per_session: u32,
    /// The most modules running at once in the server.
    pub max_running_modules: u32,
    /// The largest request message accepted, in bytes; larger ones are
    /// refused with OUT_OF_RANGE before they are buffered.
    pub max_message_bytes: usize,
    /// Where the admin endpoints are served (`/metrics`, `/healthz`,
    /// `/readyz`, the web console at `/`); `None`: nowhere. The `sessiond` binary binds it; in code,
    /// see [`crate::SessiondBuilder::admin`].
    pub admin_listen: Option<SocketAddr>,
    /// Whether `admin_listen` was asked for. When it is the default, an
    /// address in use (another sessiond on the host) only leaves the admin
    /// endpoints off, with a warning; when asked for, it stops the start.
    pub admin_listen_required: bool,
    /// How log lines are written (the `sessiond` binary's logger).
    pub log_format: LogFormat,
    /// The OTLP collector traces are exported to, if any.
    pub otlp_endpoint: Option<String>,
    /// Authentication, the access policy, TLS.
    pub security: SecurityConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            database: "sqlite://sessiond.db".to_owned(),
            database_password_file: None,
            modules: None,
            node_id: default_node_id(),
            advertise: None,
            lease_ttl: Duration::from_secs(15),
            drain_timeout: Duration::from_secs(10),
            close_grace: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(30 * 60)),
            max_lifetime: Some(Duration::from_secs(24 * 3600)),
            reaper_interval: Duration::from_secs(5),
            event_retention: Some(Duration::from_secs(90 * 24 * 3600)),
            watch_progress_interval: Duration::from_secs(5),
            event_poll_interval: Duration::from_millis(100),
            record_events: true,
            watch_buffer: 1024,
            cached_sessions: crate::known_sessions::DEFAULT_CACHED_SESSIONS,
            max_open_sessions_per_user: Some(1000),
            max_running_modules_per_session: 16,
            max_running_modules: 256,
            max_message_bytes: 1024 * 1024,
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            admin_listen_required: false,
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            security: SecurityConfig::default(),
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
    /// The security settings are incomplete or contradictory.
    #[error("{0}")]
    Security(String),
    /// A setting's value cannot be used.
    #[error("--{setting}: {message}")]
    Setting {
        /// The setting, as its flag is spelled.
        setting: &'static str,
        /// What is wrong with it.
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
            None => Settings::default(),
        };
        let settings = args.settings.or(file);
        let defaults = Self::default();
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        let listen = settings.listen.unwrap_or(defaults.listen);
        let security = SecurityConfig::from_settings(settings.security, listen)
            .map_err(ConfigError::Security)?;
        Ok(Self {
            listen,
            database: settings.database.unwrap_or(defaults.database),
            database_password_file: settings.database_password_file,
            modules: settings.modules,
            node_id: settings.node_id.unwrap_or(defaults.node_id),
            advertise: settings.advertise,
            lease_ttl: settings.lease_ttl.unwrap_or(defaults.lease_ttl),
            drain_timeout: settings.drain_timeout.unwrap_or(defaults.drain_timeout),
            close_grace: settings.close_grace.unwrap_or(defaults.close_grace),
            shutdown_grace: settings.shutdown_grace.unwrap_or(defaults.shutdown_grace),
            idle_timeout: settings.idle_timeout.map_or(defaults.idle_timeout, nonzero),
            max_lifetime: settings.max_lifetime.map_or(defaults.max_lifetime, nonzero),
            reaper_interval: settings.reaper_interval.unwrap_or(defaults.reaper_interval),
            event_retention: settings
                .event_retention
                .map_or(defaults.event_retention, nonzero),
            watch_progress_interval: settings
                .watch_progress_interval
                .unwrap_or(defaults.watch_progress_interval),
            event_poll_interval: settings
                .event_poll_interval
                .unwrap_or(defaults.event_poll_interval),
            record_events: defaults.record_events,
            watch_buffer: settings.watch_buffer.unwrap_or(defaults.watch_buffer),
            cached_sessions: settings.cached_sessions.unwrap_or(defaults.cached_sessions),
            max_open_sessions_per_user: settings
                .max_open_sessions_per_user
                .map_or(defaults.max_open_sessions_per_user, |n| {
                    (n > 0).then_some(n)
                }),
            max_running_modules_per_session: settings
                .max_running_modules_per_session
                .unwrap_or(defaults.max_running_modules_per_session),
            max_running_modules: settings
                .max_running_modules
                .unwrap_or(defaults.max_running_modules),
            max_message_bytes: settings
                .max_message_bytes
                .unwrap_or(defaults.max_message_bytes),
            admin_listen: match settings.admin_listen.as_deref().map(str::trim) {
                None => defaults.admin_listen,
                Some("") => None,
                Some(address) => {
                    Some(
                        listen_address(address).map_err(|message| ConfigError::Setting {
                            setting: "admin-listen",
                            message,
                        })?,
                    )
                }
            },
            admin_listen_required: settings.admin_listen.is_some(),
            log_format: settings.log_format.unwrap_or(defaults.log_format),
            otlp_endpoint: settings.otlp_endpoint.filter(|e| !e.trim().is_empty()),
            security,
        })
    }
}

/// `HOSTNAME-XXXXXXXX`: the host's name and a hash of the working
/// directory, so that a restarted server is the same node (and recovers its
/// own sessions) while two servers on one host in different directories are
/// not.
fn default_node_id() -> String {
    use std::hash::{Hash, Hasher};
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .unwrap_or_default()
        .hash(&mut hasher);
    format!("{host}-{:08x}", hasher.finish() & 0xffff_ffff)
}

fn read_file(path: &Path) -> Result<Settings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut settings: Settings = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    // Files named in the file are relative to the file's folder.
    if let Some(folder) = path.parent() {
        if let Some(modules) = &settings.modules {
            settings.modules = Some(folder.join(modules));
        }
        if let Some(file) = &settings.database_password_file {
            settings.database_password_file = Some(folder.join(file));
        }
        settings.security = settings.security.relative_to(folder);
    }
    Ok(settings)
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
            "listen = \"127.0.0.1:6000\"\nnode_id = \"from-file\"\ndrain_timeout = \"3s\"\n\
             modules = \"modules.toml\"\nidle_timeout = \"0s\"\n",
        )
        .unwrap();
        let args = Args::try_parse_from([
            "sessiond",
            "--config",
            path.to_str().unwrap(),
            "--node-id",
            "from-flag",
            "--close-grace",
            "2m",
        ])
        .unwrap();
        let config = Config::load(args).unwrap();
        assert_eq!(config.listen, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(config.node_id, "from-flag");
        assert_eq!(config.drain_timeout, Duration::from_secs(3));
        assert_eq!(config.close_grace, Duration::from_secs(120));
        assert_eq!(config.idle_timeout, None, "0s turns the idle timeout off");
        assert_eq!(config.modules, Some(dir.path().join("modules.toml")));
        assert_eq!(config.database, "sqlite://sessiond.db");
    }

    #[test]
    fn the_default_node_id_is_stable() {
        let id = default_node_id();
        assert_eq!(id, default_node_id());
        assert!(id.len() > 9, "{id}");
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
    fn a_bad_duration_in_the_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "close_grace = \"soon\"\n").unwrap();
        let args = Args::try_parse_from(["sessiond", "--config", path.to_str().unwrap()]).unwrap();
        let error = Config::load(args).unwrap_err().to_string();
        assert!(error.contains("soon"), "{error}");
    }

    #[test]
    fn a_host_name_is_an_address_to_listen_on() {
        let args = Args::try_parse_from(["sessiond", "--listen", "localhost:50099"]).unwrap();
        let listen = Config::load(args).unwrap().listen;
        assert!(listen.ip().is_loopback(), "{listen}");
        assert_eq!(listen.port(), 50099);
        let error = Args::try_parse_from(["sessiond", "--listen", "no port"]).unwrap_err();
        assert!(error.to_string().contains("no port"), "{error}");
    }

    #[test]
    fn a_zero_session_limit_means_none() {
        let args = Args::try_parse_from(["sessiond", "--max-open-sessions-per-user", "0"]).unwrap();
        assert_eq!(Config::load(args).unwrap().max_open_sessions_per_user, None);
    }
}
