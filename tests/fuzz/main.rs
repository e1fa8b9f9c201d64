//! Fuzzing every request of the contract through the real server: every
//! method of `SessionService`, `UserContextService`, `AccessService` and
//! `AuditService` (proto/sessiond/v1) is called over real gRPC on a
//! loopback socket, on a server with a SQLite database in a temporary
//! directory and real modules (an in-process one, and the exec modules of
//! `examples/modules/`).
//!
//! Two kinds of input, each a bolero target:
//! - [`arbitrary_bytes_as_every_request`]: arbitrary bytes sent as the
//!   request of a method the first byte picks (what a broken or hostile
//!   client sends);
//! - [`sequences_of_structured_requests`]: sequences of well-typed requests
//!   whose fields come from arbitrary values mixed with the interesting
//!   ones (ids of sessions and scopes opened earlier in the run, invisible
//!   and formatting characters, over-long names, malformed Durations, deep
//!   and non-finite `Value`s, page tokens of earlier pages), so that the
//!   handlers' deep paths are reached, not only their decoding.
//!
//! After every call (see [`target::Target`]): the server did not panic; a
//! refused call is never INTERNAL or UNKNOWN, carries an ErrorInfo of domain
//! "sessiond" with a reason of the contract (`ErrorReason`) that goes with
//! its code, and INVALID_ARGUMENT a BadRequest; a refused call, and any
//! read, changed nothing in the database (SQLite's `data_version` seen from
//! a connection of the test's own is unchanged); a module run that started
//! concludes and its value can be read.
//!
//! Under `cargo test` bolero's random engine runs each target for
//! [`TEST_TIME`]; `BOLERO_RANDOM_TEST_TIME_MS` (or
//! `BOLERO_RANDOM_ITERATIONS`) runs it longer, `BOLERO_RANDOM_SEED` replays
//! one input of a failure. RELIABILITY.md has the long runs.
//!
//! # Layout
//! - this file: the targets;
//! - [`target`]: the server under fuzz and the properties checked after
//!   every call;
//! - [`requests`]: the structured requests; [`values`]: their fields as
//!   the contract's values; [`calls`]: sending them;
//! - [`raw`]: every method's path, and bytes sent as its request.

mod calls;
#[path = "../common/mod.rs"]
mod common;
mod raw;
mod requests;
mod target;
mod values;

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use bolero::generator::r#gen;
use requests::Call;
use target::Target;

/// How long each target runs under `cargo test` (unless
/// `BOLERO_RANDOM_TEST_TIME_MS` or `BOLERO_RANDOM_ITERATIONS` says
/// otherwise).
const TEST_TIME: Duration = Duration::from_secs(12);

/// The most calls in one input of [`sequences_of_structured_requests`].
const MAX_CALLS: usize = 24;

#[test]
fn arbitrary_bytes_as_every_request() {
    let target = Target::start();
    // The server's runtime is not unwind-safe; a panic fails the test.
    let target = &AssertUnwindSafe(target);
    bolero::check!()
        .with_test_time(TEST_TIME)
        .for_each(|bytes: &[u8]| {
            let Some((&pick, body)) = bytes.split_first() else {
                return;
            };
            let method = &raw::METHODS[usize::from(pick) % raw::METHODS.len()];
            target.send_raw(method, body);
        });
    target.report("arbitrary bytes");
}

#[test]
fn sequences_of_structured_requests() {
    let target = Target::start();
    let target = &AssertUnwindSafe(target);
    bolero::check!()
        .with_generator(r#gen::<Vec<Call>>().with().len(1usize..=MAX_CALLS))
        .with_test_time(TEST_TIME)
        .for_each(|calls: &Vec<Call>| {
            for call in calls {
                target.send(call);
            }
        });
    target.report("structured requests");
}
