//! [`Interrupts`]: Ctrl-C (and SIGTERM on Unix) as a sequence of events, so
//! that a command can clean up on the first one and still be stopped at
//! once by the next.

use std::io;

/// The interrupts (Ctrl-C, and SIGTERM on Unix) since [`Interrupts::listen`].
///
/// Once listening, an interrupt no longer ends the process by itself: the
/// command decides, by awaiting [`Interrupts::next`]. An interrupt that
/// arrives while nobody awaits is kept for the next call.
#[derive(Debug)]
pub struct Interrupts {
    /// SIGINT (Ctrl-C) and SIGTERM.
    #[cfg(unix)]
    signals: [tokio::signal::unix::Signal; 2],
}

impl Interrupts {
    /// Starts listening for interrupts.
    ///
    /// # Errors
    /// When the signal handlers cannot be installed.
    pub fn listen() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                signals: [
                    signal(SignalKind::interrupt())?,
                    signal(SignalKind::terminate())?,
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Completes at the next interrupt (or at once for one that arrived
    /// since the previous call).
    pub async fn next(&mut self) {
        #[cfg(unix)]
        {
            let [interrupt, terminate] = &mut self.signals;
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
