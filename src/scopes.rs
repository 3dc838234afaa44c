//! Scopes, legacy permission flags and the operations they allow (SPEC §3).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The exact string of the SPEC.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// Parses the exact string of the SPEC.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// A scope a key may hold.
    Scope {
        /// Read sessions.
        SessionsRead = "sessions:read",
        /// Create and terminate sessions.
        SessionsWrite = "sessions:write",
        /// Read end users.
        UsersRead = "users:read",
        /// Create, change and delete end users.
        UsersWrite = "users:write",
        /// Read usage and alerts.
        BillingRead = "billing:read",
        /// Record usage and set alerts.
        BillingWrite = "billing:write",
        /// List workers.
        WorkersRead = "workers:read",
        /// Register workers and report session connect/end.
        WorkersWrite = "workers:write",
        /// Every operation.
        AdminAll = "admin:all",
    }
}

string_enum! {
    /// A legacy permission flag, kept for keys created before scopes.
    Permission {
        /// Create sessions.
        SessionCreate = "session_create",
        /// Read and terminate sessions.
        SessionManage = "session_manage",
        /// Read usage.
        UsageRead = "usage_read",
    }
}

string_enum! {
    /// One kind of request (the rows of SPEC §3).
    Operation {
        /// `POST /api/v1/sessions`.
        SessionCreate = "session.create",
        /// `GET /api/v1/sessions[/:id]`.
        SessionRead = "session.read",
        /// `DELETE /api/v1/sessions/:id`.
        SessionTerminate = "session.terminate",
        /// `GET /api/v1/users[/:id]`.
        UserRead = "user.read",
        /// `POST`/`PATCH`/`DELETE /api/v1/users…`.
        UserWrite = "user.write",
        /// `GET /api/v1/usage…`.
        BillingRead = "billing.read",
        /// `POST /api/v1/usage…`.
        BillingWrite = "billing.write",
        /// `GET /api/v1/workers`.
        WorkerRead = "worker.read",
        /// Worker registration and session connect/end.
        WorkerWrite = "worker.write",
        /// Keys, audit and metrics.
        Admin = "admin",
    }
}

impl Operation {
    /// The scope that allows this operation (besides `admin:all`).
    pub fn scope(self) -> Scope {
        match self {
            Operation::SessionCreate | Operation::SessionTerminate => Scope::SessionsWrite,
            Operation::SessionRead => Scope::SessionsRead,
            Operation::UserRead => Scope::UsersRead,
            Operation::UserWrite => Scope::UsersWrite,
            Operation::BillingRead => Scope::BillingRead,
            Operation::BillingWrite => Scope::BillingWrite,
            Operation::WorkerRead => Scope::WorkersRead,
            Operation::WorkerWrite => Scope::WorkersWrite,
            Operation::Admin => Scope::AdminAll,
        }
    }

    /// The legacy flag that also allows it, if any.
    pub fn permission(self) -> Option<Permission> {
        match self {
            Operation::SessionCreate => Some(Permission::SessionCreate),
            Operation::SessionRead | Operation::SessionTerminate => Some(Permission::SessionManage),
            Operation::BillingRead => Some(Permission::UsageRead),
            _ => None,
        }
    }
}

/// A set of scopes, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u16);

/// A set of legacy permission flags, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Permissions(u8);

macro_rules! bit_set {
    ($set:ident, $item:ident, $bits:ty, $what:literal) => {
        impl $set {
            /// The empty set.
            pub const EMPTY: $set = $set(0);

            /// Whether the set holds `item`.
            pub fn contains(self, item: $item) -> bool {
                self.0 & (1 << item as u8) != 0
            }

            /// The set with `item` added.
            pub fn with(self, item: $item) -> Self {
                $set(self.0 | (1 << item as u8))
            }

            /// Whether the set is empty.
            pub fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// The members, in declaration order.
            pub fn iter(self) -> impl Iterator<Item = $item> {
                $item::ALL.iter().copied().filter(move |item| self.contains(*item))
            }

            /// Parses a list of exact strings; an unknown or repeated one is an
            /// `invalid_request` naming `field`.
            pub fn parse<S: AsRef<str>>(field: &str, items: &[S]) -> Result<Self> {
                items.iter().try_fold($set::EMPTY, |set, text| {
                    let text = text.as_ref();
                    let item = $item::parse(text).ok_or_else(|| {
                        Error::invalid(field, format!("unknown {} `{}`", $what, crate::validate::printable(text)))
                    })?;
                    if set.contains(item) {
                        return Err(Error::invalid(field, format!("`{text}` is listed twice")));
                    }
                    Ok(set.with(item))
                })
            }

            /// The raw bits (stable: declaration order).
            pub fn bits(self) -> $bits {
                self.0
            }

            /// The set from raw bits; unknown bits are dropped.
            pub fn from_bits(bits: $bits) -> Self {
                $set(bits & ((1 << $item::ALL.len()) - 1))
            }
        }

        impl FromIterator<$item> for $set {
            fn from_iter<I: IntoIterator<Item = $item>>(iter: I) -> Self {
                iter.into_iter().fold($set::EMPTY, $set::with)
            }
        }

        impl Serialize for $set {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
                serializer.collect_seq(self.iter())
            }
        }

        impl<'de> Deserialize<'de> for $set {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
                let items = Vec::<$item>::deserialize(deserializer)?;
                Ok(items.into_iter().collect())
            }
        }
    };
}

bit_set!(Scopes, Scope, u16, "scope");
bit_set!(Permissions, Permission, u8, "permission");

/// Whether a key holding `scopes` and `permissions` may perform `operation`: it holds the
/// operation's scope, or `admin:all`, or the operation's legacy flag.
pub fn allows(scopes: Scopes, permissions: Permissions, operation: Operation) -> bool {
    scopes.contains(Scope::AdminAll)
        || scopes.contains(operation.scope())
        || operation.permission().is_some_and(|flag| permissions.contains(flag))
}
