//! Structured requests: one variant per method of the contract, whose
//! fields mix arbitrary values with the interesting ones — the ids of
//! sessions and scopes the run opened, ids ≤ 0, names that are blank,
//! over-long or made of invisible, formatting or control characters,
//! Durations outside protobuf's range, `Value`s nested past every limit or
//! not finite, and page tokens of earlier pages. [`values`] turns them
//! into the contract's messages.

use bolero::generator::{TypeGenerator, r#gen};

pub use crate::values::Memory;

/// A session id.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Id {
    /// A session a call of this run opened (by its index, modulo how many).
    Known(u16),
    /// The last session opened.
    Latest,
    /// Any number (0, negative, unknown).
    Raw(i64),
}

/// A scope id.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Scope {
    /// A scope a call of this run pushed (by its index, modulo how many).
    Known(u16),
    /// The last scope pushed.
    Latest,
    /// Any number.
    Raw(i64),
}

/// A user name (or any other text).
#[derive(Clone, Debug, TypeGenerator)]
pub enum Text {
    /// One of [`crate::values::INTERESTING_TEXT`].
    Interesting(u8),
    /// Arbitrary text.
    Any(String),
    /// `count` times one character (over-long names).
    Repeated(u16, char),
}

/// A module id.
#[derive(Clone, Debug, TypeGenerator)]
pub enum ModuleName {
    /// The in-process module that returns its parameters.
    Echo,
    /// The example exec module `whoami`.
    Whoami,
    /// The example exec module `100000` (the report).
    Report,
    /// Anything else.
    Other(Text),
}

/// A `google.protobuf.Duration`.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Span {
    /// Unset.
    Unset,
    /// A few milliseconds.
    Millis(u8),
    /// Exactly one hour (the longest allowed).
    Hour,
    /// Any seconds and nanos (negative, mixed signs, nanos ≥ 1e9, huge).
    Raw(i64, i32),
}

/// A `google.protobuf.Timestamp`.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Time {
    /// Unset.
    Unset,
    /// Now plus (or minus) some seconds.
    AroundNow(i32),
    /// Any seconds and nanos.
    Raw(i64, i32),
}

/// An enum field's number.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Number {
    /// 0 to 3: a value of every enum of the contract.
    Low(u8),
    /// A small number (the enum's values and a few past them).
    Small(u8),
    /// Any number.
    Raw(i32),
}

/// A page size.
#[derive(Clone, Debug, TypeGenerator)]
pub enum PageSize {
    /// 0: the default.
    Default,
    /// 1 to 256.
    Small(u8),
    /// Any number (negative, past the maximum).
    Raw(i32),
}

/// A page token.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Token {
    /// None (the first page).
    First,
    /// The next-page token of an earlier listing of the same kind.
    Earlier(u8),
    /// Arbitrary text.
    Any(String),
}

/// A revision.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Revision {
    /// A small revision.
    Small(u16),
    /// Any number.
    Raw(i64),
}

/// A `google.protobuf.Value`.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Json {
    /// Unset kind.
    Unset,
    /// null.
    Null,
    /// true or false.
    Bool(bool),
    /// A number, NaN and infinities included.
    Number(f64),
    /// A string.
    Text(Text),
    /// A list.
    List(#[generator(r#gen::<Vec<Json>>().with().len(0usize..4))] Vec<Json>),
    /// A struct.
    Object(#[generator(r#gen::<Vec<(Text, Json)>>().with().len(0usize..4))] Vec<(Text, Json)>),
    /// Lists nested this many levels deep around a number.
    DeepList(u8),
    /// Structs nested this many levels deep around an empty one.
    DeepObject(u8),
}

/// The parameters of a module run (a few).
#[derive(Clone, Debug, TypeGenerator)]
pub struct Parameters(
    #[generator(r#gen::<Vec<(Text, Json)>>().with().len(0usize..4))] pub Vec<(Text, Json)>,
);

/// One call of the contract, one variant per method.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Call {
    /// SessionService.GetSessionUser.
    GetSessionUser(Id),
    /// SessionService.GetSessionInfo.
    GetSessionInfo(Id),
    /// SessionService.ListSessions.
    ListSessions {
        /// Filter on the user, when set.
        user: Option<Text>,
        /// The kind filter.
        kind: Number,
        /// The state filter.
        state: Number,
        /// The states filter.
        #[generator(r#gen::<Vec<Number>>().with().len(0usize..4))]
        states: Vec<Number>,
        /// The page size.
        page_size: PageSize,
        /// The page token.
        page_token: Token,
        /// Only sessions started from this time.
        started_after: Time,
        /// Only sessions started before this time.
        started_before: Time,
        /// Newest first.
        newest_first: bool,
    },
    /// SessionService.StartSession.
    StartSession {
        /// The user.
        user: Text,
        /// The client's description.
        client: Option<Text>,
    },
    /// SessionService.TouchSession.
    TouchSession(Id),
    /// SessionService.EndSession.
    EndSession(Id),
    /// SessionService.OpenClientlessSession.
    OpenClientlessSession(Text),
    /// SessionService.CloseClientlessSession.
    CloseClientlessSession(Id, Span),
    /// SessionService.OpenModule.
    OpenModule {
        /// The session.
        session: Id,
        /// The module.
        module: ModuleName,
        /// The parameters, when set.
        parameters: Option<Parameters>,
    },
    /// SessionService.GetReturnValue.
    GetReturnValue(Id, ModuleName, Span),
    /// SessionService.WatchSessions.
    WatchSessions {
        /// Where to start.
        after_revision: Revision,
        /// Filter on the user, when set.
        user: Option<Text>,
        /// Filter on a session, when set.
        session: Option<Id>,
        /// Whether to send the open sessions first.
        send_initial_state: bool,
    },
    /// UserContextService.GetUserContext.
    GetUserContext(Id),
    /// UserContextService.SetUserContext.
    SetUserContext(Id, Text),
    /// UserContextService.PushUserContext.
    PushUserContext(Id, Text),
    /// UserContextService.PopUserContext.
    PopUserContext(Id, Scope),
    /// AccessService.WhoAmI.
    WhoAmI,
    /// AccessService.CheckAccess.
    CheckAccess {
        /// The permission.
        permission: Number,
        /// The session, when set.
        session: Option<Id>,
        /// The user.
        user: Option<Text>,
        /// The module.
        module: Option<ModuleName>,
    },
    /// AuditService.ListEvents.
    ListEvents {
        /// Filter on a session, when set.
        session: Option<Id>,
        /// Filter on a user, when set.
        user: Option<Text>,
        /// Filter on a subject, when set.
        subject: Option<Text>,
        /// Filter on kinds.
        #[generator(r#gen::<Vec<Number>>().with().len(0usize..4))]
        kinds: Vec<Number>,
        /// From this time.
        start_time: Time,
        /// Before this time.
        end_time: Time,
        /// After this revision.
        after_revision: Revision,
        /// The page size.
        page_size: PageSize,
        /// The page token.
        page_token: Token,
        /// Newest first.
        newest_first: bool,
    },
    /// AuditService.VerifyLedger.
    VerifyLedger(Revision, Revision),
    /// AuditService.GetCheckpoint.
    GetCheckpoint,
}
