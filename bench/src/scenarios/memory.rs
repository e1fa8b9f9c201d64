//! `memory`: sessiond's RSS before and after opening many idle clientless
//! sessions.

use std::time::{Duration, Instant};

use super::Bench;
use super::setup::{open_close_cycles, open_sessions};
use crate::Result;
use crate::machine;
use crate::report::Memory;

impl Bench {
    /// `memory`: sessiond's RSS before and after opening many idle
    /// clientless sessions.
    pub(super) async fn memory(&self) -> Result<Memory> {
        let sessiond = self.start_sessiond(&self.path("memory.db")).await?;
        let count = self.options.memory_sessions();
        // Warm up the connections, the allocator and the store with
        // open+close cycles, which leave nothing open.
        let warmup = (count / 50).max(200);
        open_close_cycles(&sessiond, warmup).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_before_kib = machine::rss_kib(sessiond.pid())?;
        let began = Instant::now();
        let opened = open_sessions(&sessiond, usize::try_from(count)?, "mem", None).await?;
        let open_rate = opened.len() as f64 / began.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_after_kib = machine::rss_kib(sessiond.pid())?;
        println!(
            "   {count} clientless sessions opened at {open_rate:.0}/s; RSS {rss_before_kib} KiB \
             -> {rss_after_kib} KiB"
        );
        // Its sessions are thrown away: no graceful close of them all.
        sessiond.kill().await?;
        Ok(Memory {
            sessions: count,
            rss_before_kib,
            rss_after_kib,
            open_rate,
        })
    }
}
