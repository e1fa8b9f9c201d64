//! From the structured requests' fields to the contract's values, and the
//! ids and page tokens that earlier calls returned.

use std::collections::VecDeque;

use prost_types::value::Kind;

use crate::requests::{
    Id, Json, ModuleName, Number, PageSize, Revision, Scope, Span, Text, Time, Token,
};

/// Texts that sit on the rules' edges: names that are blank, padded, made
/// of invisible or formatting characters (zero-width space, BOM, a bidi
/// override, a line separator, a lone combining mark), control characters,
/// non-ASCII letters, and names with a meaning elsewhere.
pub const INTERESTING_TEXT: [&str; 28] = [
    "R41",
    "alice",
    "",
    " ",
    "\t",
    "R41\n",
    "\u{200B}",
    "\u{FEFF}",
    "\u{200B}\u{FEFF}",
    "adm\u{202E}nimda",
    "a\u{2028}b",
    "\u{0301}",
    "\u{0301}x",
    "x\u{0301}",
    "Ä",
    "日本語",
    "👩\u{200D}💻",
    "\u{7F}",
    "\u{0}",
    "\u{FFFD}",
    "x y",
    " R41",
    "anonymous",
    "system:sessiond",
    "\"'\\",
    "%s%n{}",
    "\u{E000}",
    "\u{10FFFF}",
];

/// How many of the latest ids are remembered.
const REMEMBERED: usize = 64;

/// What earlier calls returned, for later calls to use.
#[derive(Debug, Default)]
pub struct Memory {
    sessions: VecDeque<i64>,
    scopes: VecDeque<i64>,
    session_pages: VecDeque<String>,
    event_pages: VecDeque<String>,
}

/// Appends `value` to `list`, forgetting the oldest past [`REMEMBERED`].
fn remember<T>(list: &mut VecDeque<T>, value: T) {
    if list.len() == REMEMBERED {
        list.pop_front();
    }
    list.push_back(value);
}

/// The `index`th of `list` (modulo its length), or `fallback`.
fn pick<T: Clone>(list: &VecDeque<T>, index: usize, fallback: T) -> T {
    if list.is_empty() {
        return fallback;
    }
    list[index % list.len()].clone()
}

impl Memory {
    /// A session was opened or started.
    pub fn session_opened(&mut self, session_id: i64) {
        remember(&mut self.sessions, session_id);
    }

    /// A scope was pushed.
    pub fn scope_pushed(&mut self, scope_id: i64) {
        remember(&mut self.scopes, scope_id);
    }

    /// A listing of sessions (`events` false) or events returned a token.
    pub fn page(&mut self, events: bool, token: String) {
        if !token.is_empty() {
            let pages = if events {
                &mut self.event_pages
            } else {
                &mut self.session_pages
            };
            remember(pages, token);
        }
    }

    /// The session id `id` names.
    pub fn session(&self, id: &Id) -> i64 {
        match id {
            Id::Known(index) => pick(&self.sessions, usize::from(*index), 1),
            Id::Latest => self.sessions.back().copied().unwrap_or(1),
            Id::Raw(id) => *id,
        }
    }

    /// The scope id `scope` names.
    pub fn scope(&self, scope: &Scope) -> i64 {
        match scope {
            Scope::Known(index) => pick(&self.scopes, usize::from(*index), 1),
            Scope::Latest => self.scopes.back().copied().unwrap_or(1),
            Scope::Raw(id) => *id,
        }
    }

    /// The page token `token` names, for a listing of sessions or events.
    pub fn token(&self, events: bool, token: &Token) -> String {
        let pages = if events {
            &self.event_pages
        } else {
            &self.session_pages
        };
        match token {
            Token::First => String::new(),
            Token::Earlier(index) => pick(pages, usize::from(*index), String::new()),
            Token::Any(text) => text.clone(),
        }
    }
}

/// The text `text` names.
pub fn text(text: &Text) -> String {
    match text {
        Text::Interesting(index) => {
            INTERESTING_TEXT[usize::from(*index) % INTERESTING_TEXT.len()].to_owned()
        }
        Text::Any(text) => text.clone(),
        Text::Repeated(count, c) => c.to_string().repeat(usize::from(*count) % 600),
    }
}

/// An optional text, empty when unset.
pub fn optional_text(value: Option<&Text>) -> String {
    value.map(text).unwrap_or_default()
}

/// The module id `module` names.
pub fn module(module: &ModuleName) -> String {
    match module {
        ModuleName::Echo => "echo".to_owned(),
        ModuleName::Whoami => "whoami".to_owned(),
        ModuleName::Report => "100000".to_owned(),
        ModuleName::Other(other) => text(other),
    }
}

/// The Duration `span` names.
pub fn duration(span: &Span) -> Option<prost_types::Duration> {
    match span {
        Span::Unset => None,
        Span::Millis(millis) => Some(prost_types::Duration {
            seconds: 0,
            nanos: i32::from(*millis) * 1_000_000,
        }),
        Span::Hour => Some(prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        }),
        Span::Raw(seconds, nanos) => Some(prost_types::Duration {
            seconds: *seconds,
            nanos: *nanos,
        }),
    }
}

/// The Timestamp `time` names.
pub fn timestamp(time: &Time) -> Option<prost_types::Timestamp> {
    match time {
        Time::Unset => None,
        Time::AroundNow(offset) => {
            let mut now = prost_types::Timestamp::from(std::time::SystemTime::now());
            now.seconds += i64::from(*offset);
            Some(now)
        }
        Time::Raw(seconds, nanos) => Some(prost_types::Timestamp {
            seconds: *seconds,
            nanos: *nanos,
        }),
    }
}

/// The enum number `number` names.
pub fn number(number: &Number) -> i32 {
    match number {
        Number::Low(low) => i32::from(*low % 4),
        Number::Small(small) => i32::from(*small % 16),
        Number::Raw(raw) => *raw,
    }
}

/// The revision `revision` names.
pub fn revision(revision: &Revision) -> i64 {
    match revision {
        Revision::Small(small) => i64::from(*small),
        Revision::Raw(raw) => *raw,
    }
}

/// The `Value` `json` names.
pub fn value(json: &Json) -> prost_types::Value {
    let kind = match json {
        Json::Unset => None,
        Json::Null => Some(Kind::NullValue(0)),
        Json::Bool(b) => Some(Kind::BoolValue(*b)),
        Json::Number(n) => Some(Kind::NumberValue(*n)),
        Json::Text(t) => Some(Kind::StringValue(text(t))),
        Json::List(items) => Some(Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(value).collect(),
        })),
        Json::Object(fields) => Some(Kind::StructValue(structure(fields))),
        Json::DeepList(levels) => {
            return (0..*levels).fold(
                prost_types::Value {
                    kind: Some(Kind::NumberValue(1.0)),
                },
                |inner, _| prost_types::Value {
                    kind: Some(Kind::ListValue(prost_types::ListValue {
                        values: vec![inner],
                    })),
                },
            );
        }
        Json::DeepObject(levels) => {
            return (0..*levels).fold(
                prost_types::Value {
                    kind: Some(Kind::StructValue(prost_types::Struct::default())),
                },
                |inner, _| prost_types::Value {
                    kind: Some(Kind::StructValue(prost_types::Struct {
                        fields: [("x".to_owned(), inner)].into(),
                    })),
                },
            );
        }
    };
    prost_types::Value { kind }
}

/// The `Struct` of `fields`.
pub fn structure(fields: &[(Text, Json)]) -> prost_types::Struct {
    prost_types::Struct {
        fields: fields
            .iter()
            .map(|(name, json)| (text(name), value(json)))
            .collect(),
    }
}

/// The page size `size` names.
pub fn page_size(size: &PageSize) -> i32 {
    match size {
        PageSize::Default => 0,
        PageSize::Small(small) => i32::from(*small) + 1,
        PageSize::Raw(raw) => *raw,
    }
}
