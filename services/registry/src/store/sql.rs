//! A small SQL builder for the portable dialect both engines accept through sqlx `Any`:
//! `$n` placeholders numbered as arguments are pushed.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Float(f64),
    OptFloat(Option<f64>),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<i32> for Arg {
    fn from(v: i32) -> Self {
        Arg::Int(i64::from(v))
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::Float(v)
    }
}
impl From<Option<f64>> for Arg {
    fn from(v: Option<f64>) -> Self {
        Arg::OptFloat(v)
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(v)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn arg(&mut self, value: impl Into<Arg>) -> &mut Self {
        use std::fmt::Write;
        self.args.push(value.into());
        // Writing into the String cannot fail.
        let _ = write!(self.text, "${}", self.args.len());
        self
    }

    /// Appends `(v1, v2, ...)` for one row of a multi-row VALUES.
    pub(crate) fn row(&mut self, values: Vec<Arg>) -> &mut Self {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.arg(v);
        }
        self.push(")")
    }

    /// Appends `$a, $b, ...` for an IN list.
    pub(crate) fn list<T: Into<Arg>>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.arg(v);
        }
        self
    }

    /// The statement, ready to run; the builder is left empty.
    pub(crate) fn query(&mut self) -> Query<'static, Any, AnyArguments> {
        let Sql { text, args } = std::mem::take(self);
        let mut q = sqlx::query(AssertSqlSafe(text));
        for a in args {
            q = match a {
                Arg::Int(v) => q.bind(v),
                Arg::Float(v) => q.bind(v),
                Arg::OptFloat(Some(v)) => q.bind(v),
                // sqlx-core 0.9.0 swaps the NULL types of Real and Double in `Any` arguments
                // (any/arguments.rs), so a NULL f64 reached PostgreSQL declared as float4; the
                // statement was cached that way and the next non-NULL f64 (8 bytes) was refused
                // ("incorrect binary data format"). A NULL f32 arrives declared as float8.
                Arg::OptFloat(None) => q.bind(None::<f32>),
                Arg::Text(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
            };
        }
        q
    }
}
