//! `contract_enum!`: a domain enum mirroring one of the contract's enums,
//! with an `Unknown(i32)` variant so that a newer server's values do not
//! break an older client.

/// Declares a public enum mirroring a contract enum. Each variant names its
/// wire number, a short lowercase name (for people and the command line)
/// and its contract name (for JSON output). The contract's `UNSPECIFIED`
/// value is left out: the types using these enums say what an unset value
/// means (usually `None`).
macro_rules! contract_enum {
    (
        $(#[$doc:meta])*
        pub enum $name:ident {
            $(
                $(#[$vdoc:meta])*
                $variant:ident = $number:literal, $short:literal, $contract:literal;
            )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $(#[$vdoc])*
                $variant,
            )+
            /// A value this version of the client does not know (sent by a
            /// newer server), with its wire number.
            Unknown(i32),
        }

        impl $name {
            /// Every known value, in wire order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value with wire number `number`; `None` for the
            /// contract's `UNSPECIFIED` (0).
            #[must_use]
            pub fn from_wire(number: i32) -> Option<Self> {
                match number {
                    0 => None,
                    $($number => Some(Self::$variant),)+
                    other => Some(Self::Unknown(other)),
                }
            }

            /// The wire number.
            #[must_use]
            pub fn wire(self) -> i32 {
                match self {
                    $(Self::$variant => $number,)+
                    Self::Unknown(number) => number,
                }
            }

            /// The short lowercase name (as the command line accepts it).
            #[must_use]
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $short,)+
                    Self::Unknown(_) => "unknown",
                }
            }

            /// The value's name in the contract (as in protobuf's JSON
            /// mapping).
            #[must_use]
            pub fn contract_name(self) -> &'static str {
                match self {
                    $(Self::$variant => $contract,)+
                    Self::Unknown(_) => "UNKNOWN",
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self {
                    Self::Unknown(number) => write!(f, "unknown ({number})"),
                    known => f.write_str(known.name()),
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = crate::contract_enum::UnknownName;

            /// Parses the short name or the contract name, ignoring case.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name().eq_ignore_ascii_case(s) || v.contract_name().eq_ignore_ascii_case(s))
                    .ok_or_else(|| crate::contract_enum::UnknownName {
                        name: s.to_owned(),
                        expected: Self::ALL.iter().map(|v| v.name()).collect::<Vec<_>>().join(", "),
                    })
            }
        }
    };
}

pub(crate) use contract_enum;

/// A name that is none of an enum's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {name:?}; expected one of: {expected}")]
pub struct UnknownName {
    /// The name given.
    pub name: String,
    /// The accepted short names.
    pub expected: String,
}
