//! How values cross into and out of both databases. Postgres keeps UUIDs, times, JSON and tags
//! natively; SQLite (whose migrations cannot change) keeps them as text: UUIDs hyphenated, times
//! as RFC 3339 with microseconds and `Z` (so text order is time order), JSON and tags as JSON.
//! [`Arg`] is what a statement binds, the column types ([`Id`], [`Time`], [`Json`], [`Tags`])
//! what a row decodes into, so each row type is written once for both.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};
use uuid::Uuid;

/// A time as SQLite keeps it.
pub(crate) fn ts(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A value bound to a statement.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    /// A 32-bit integer column (Postgres `integer`).
    Int4(Option<i32>),
    Float(f64),
    Id(Option<Uuid>),
    Time(Option<DateTime<Utc>>),
    Json(Value),
    /// A list of strings: Postgres `text[]`, SQLite a JSON array.
    Tags(Vec<String>),
    /// A list of UUIDs: Postgres `uuid[]`, SQLite a JSON array (for `json_each`).
    Ids(Vec<Uuid>),
    Bytes(Vec<u8>),
}

macro_rules! arg_from {
    ($($ty:ty => $variant:ident),* $(,)?) => {$(
        impl From<$ty> for Arg {
            fn from(value: $ty) -> Self {
                Arg::$variant(Some(value.into()))
            }
        }
        impl From<Option<$ty>> for Arg {
            fn from(value: Option<$ty>) -> Self {
                Arg::$variant(value.map(Into::into))
            }
        }
    )*};
}

arg_from!(String => Text, &String => Text, &str => Text, i64 => Int, i32 => Int4, Uuid => Id, DateTime<Utc> => Time);

impl From<&Option<String>> for Arg {
    fn from(value: &Option<String>) -> Self {
        Arg::Text(value.clone())
    }
}

impl From<f64> for Arg {
    fn from(value: f64) -> Self {
        Arg::Float(value)
    }
}

impl From<&Value> for Arg {
    fn from(value: &Value) -> Self {
        Arg::Json(value.clone())
    }
}

impl From<Value> for Arg {
    fn from(value: Value) -> Self {
        Arg::Json(value)
    }
}

impl From<&Vec<String>> for Arg {
    fn from(value: &Vec<String>) -> Self {
        Arg::Tags(value.clone())
    }
}

impl Type<Sqlite> for Arg {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<'q> Encode<'q, Sqlite> for Arg {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        match self {
            Arg::Text(text) => Encode::<Sqlite>::encode(text.clone(), buf),
            Arg::Int(n) => Encode::<Sqlite>::encode(*n, buf),
            Arg::Int4(n) => Encode::<Sqlite>::encode(*n, buf),
            Arg::Float(x) => Encode::<Sqlite>::encode(*x, buf),
            Arg::Id(id) => Encode::<Sqlite>::encode(id.map(|id| id.to_string()), buf),
            Arg::Time(time) => Encode::<Sqlite>::encode(time.map(ts), buf),
            Arg::Json(value) => Encode::<Sqlite>::encode(value.to_string(), buf),
            Arg::Tags(tags) => Encode::<Sqlite>::encode(serde_json::to_string(tags)?, buf),
            Arg::Ids(ids) => Encode::<Sqlite>::encode(serde_json::to_string(ids)?, buf),
            Arg::Bytes(bytes) => Encode::<Sqlite>::encode(bytes.clone(), buf),
        }
    }
}

impl Type<Postgres> for Arg {
    fn type_info() -> PgTypeInfo {
        <String as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Arg {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match self {
            Arg::Text(text) => Encode::<Postgres>::encode_by_ref(text, buf),
            Arg::Int(n) => Encode::<Postgres>::encode_by_ref(n, buf),
            Arg::Int4(n) => Encode::<Postgres>::encode_by_ref(n, buf),
            Arg::Float(x) => Encode::<Postgres>::encode_by_ref(x, buf),
            Arg::Id(id) => Encode::<Postgres>::encode_by_ref(id, buf),
            Arg::Time(time) => Encode::<Postgres>::encode_by_ref(time, buf),
            Arg::Json(value) => Encode::<Postgres>::encode_by_ref(value, buf),
            Arg::Tags(tags) => Encode::<Postgres>::encode_by_ref(tags, buf),
            Arg::Ids(ids) => Encode::<Postgres>::encode_by_ref(ids, buf),
            Arg::Bytes(bytes) => Encode::<Postgres>::encode_by_ref(bytes, buf),
        }
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(match self {
            Arg::Text(_) => <String as Type<Postgres>>::type_info(),
            Arg::Int(_) => <i64 as Type<Postgres>>::type_info(),
            Arg::Int4(_) => <i32 as Type<Postgres>>::type_info(),
            Arg::Float(_) => <f64 as Type<Postgres>>::type_info(),
            Arg::Id(_) => <Uuid as Type<Postgres>>::type_info(),
            Arg::Time(_) => <DateTime<Utc> as Type<Postgres>>::type_info(),
            Arg::Json(_) => <Value as Type<Postgres>>::type_info(),
            Arg::Tags(_) => <Vec<String> as Type<Postgres>>::type_info(),
            Arg::Ids(_) => <Vec<Uuid> as Type<Postgres>>::type_info(),
            Arg::Bytes(_) => <Vec<u8> as Type<Postgres>>::type_info(),
        })
    }
}

/// A column type read natively from Postgres and from text in SQLite.
macro_rules! column {
    ($(#[$doc:meta])* $name:ident($inner:ty), $parse:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq)]
        pub(crate) struct $name(pub $inner);

        impl Type<Sqlite> for $name {
            fn type_info() -> SqliteTypeInfo {
                <String as Type<Sqlite>>::type_info()
            }
            fn compatible(ty: &SqliteTypeInfo) -> bool {
                <String as Type<Sqlite>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Sqlite> for $name {
            fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Sqlite>>::decode(value)?;
                let parse: fn(&str) -> Result<$inner, BoxDynError> = $parse;
                Ok($name(parse(text)?))
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <$inner as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <$inner as Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok($name(<$inner as Decode<Postgres>>::decode(value)?))
            }
        }
    };
}

column!(
    /// A UUID column.
    Id(Uuid),
    |text| Ok(Uuid::parse_str(text)?)
);
column!(
    /// A time column.
    Time(DateTime<Utc>),
    |text| Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
);
column!(
    /// A JSON column.
    Json(Value),
    |text| Ok(serde_json::from_str(text)?)
);
column!(
    /// A list of strings.
    Tags(Vec<String>),
    |text| Ok(serde_json::from_str(text)?)
);
