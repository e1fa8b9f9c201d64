//! `sessionctl audit …`: its subcommands and the event filters of `list`
//! and `export`.

use std::time::SystemTime;

use clap::{Args, Subcommand};
use sessiond_client::{EventFilter, EventKind, SessionId};

/// `sessionctl audit …`: the event log, for callers granted `read_audit`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List events, oldest first (newest first with --newest-first).
    List {
        /// Which events.
        #[command(flatten)]
        filter: EventFilterArgs,
        /// Newest first.
        #[arg(long)]
        newest_first: bool,
        /// The most events to print.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
    /// Write every matching event to stdout, oldest first, one JSON object
    /// per line (whatever --output says), reading page after page: for a
    /// SIEM or an archive.
    Export {
        /// Which events.
        #[command(flatten)]
        filter: EventFilterArgs,
    },
    /// Recompute the log's hash chain and say whether it holds; exit 1,
    /// naming the first bad revision and the problem, when it does not.
    Verify {
        /// The first revision to verify [default: the oldest retained].
        #[arg(long, value_name = "REV")]
        from: Option<i64>,
        /// The last revision to verify [default: the head].
        #[arg(long, value_name = "REV")]
        to: Option<i64>,
    },
    /// Print the log's head (revision and hash) and its compaction
    /// checkpoint, to keep elsewhere and compare with later.
    Checkpoint,
}

/// The filters of `audit list` and `audit export`; unset ones match
/// everything.
#[derive(Debug, Args)]
pub struct EventFilterArgs {
    /// Only events of this session.
    #[arg(long, value_name = "ID")]
    pub session: Option<SessionId>,
    /// Only events of this user's sessions.
    #[arg(long)]
    pub user: Option<String>,
    /// Only events caused by this subject (the caller, or
    /// "system:sessiond").
    #[arg(long)]
    pub subject: Option<String>,
    /// Only events of this kind, e.g. session_ended (repeat for several).
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<EventKind>,
    /// Only events at or after this time (RFC 3339, e.g.
    /// 2026-12-01T00:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    pub since: Option<SystemTime>,
    /// Only events before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = humantime::parse_rfc3339_weak)]
    pub until: Option<SystemTime>,
    /// Only events after this revision.
    #[arg(long, value_name = "REV", default_value_t = 0)]
    pub after: i64,
}

impl EventFilterArgs {
    /// The client's filter, oldest first unless `newest_first`.
    pub fn to_filter(&self, newest_first: bool) -> EventFilter {
        EventFilter {
            session_id: self.session,
            user: self.user.clone(),
            subject: self.subject.clone(),
            kinds: self.kinds.clone(),
            start_time: self.since,
            end_time: self.until,
            after_revision: self.after,
            newest_first,
        }
    }
}
