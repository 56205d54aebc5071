//! Statements written once for both engines: SQL text with `?` placeholders and its values
//! as data ([`Stmt`]), run on either engine's connection ([`Conn`]). SqliteStore methods whose
//! SQL is portable take a `Conn` and are written once; each engine opens its transaction
//! and hands its connection in. (sqlx code generic over `Database` needs a bound for every
//! type at every lifetime and has no generic `rows_affected`: this is the smaller seam.)

use super::StoreError;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use std::borrow::Cow;

/// One bound value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Int(i64),
    Float(f64),
    OptFloat(Option<f64>),
    Text(&'a str),
    OptText(Option<&'a str>),
    Bool(bool),
    Blob(&'a [u8]),
}

/// A statement and its values, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt<'a> {
    pub sql: Cow<'a, str>,
    pub values: Vec<Value<'a>>,
}

impl<'a> Stmt<'a> {
    pub fn new(sql: impl Into<Cow<'a, str>>, values: impl IntoIterator<Item = Value<'a>>) -> Stmt<'a> {
        Stmt { sql: sql.into(), values: values.into_iter().collect() }
    }
}

/// Row types both engines decode (tuples of the usual types are).
pub trait Rows: Send + Unpin + for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> {}
impl<T> Rows for T where T: Send + Unpin + for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> {}

/// `?` placeholders numbered `$1, $2, …` for PostgreSQL (a `?` inside a quoted literal or
/// identifier is left alone).
pub fn numbered(sql: &str) -> Cow<'_, str> {
    if !sql.contains('?') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let (mut n, mut quote) = (0, None);
    for c in sql.chars() {
        match (c, quote) {
            ('\'' | '"', None) => {
                quote = Some(c);
                out.push(c);
            }
            (c, Some(q)) if c == q => {
                quote = None;
                out.push(c);
            }
            ('?', None) => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            (c, _) => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Either engine's connection (inside the caller's transaction).
pub enum Conn<'c> {
    Sqlite(&'c mut sqlx::SqliteConnection),
    Postgres(&'c mut sqlx::PgConnection),
}

/// Binds `values` to a sqlx query of either engine, in order.
macro_rules! bind_values {
    ($q:expr, $values:expr) => {{
        let mut q = $q;
        for v in $values {
            q = match *v {
                Value::Int(i) => q.bind(i),
                Value::Float(f) => q.bind(f),
                Value::OptFloat(f) => q.bind(f),
                Value::Text(t) => q.bind(t),
                Value::OptText(t) => q.bind(t),
                Value::Bool(b) => q.bind(b),
                Value::Blob(b) => q.bind(b),
            };
        }
        q
    }};
}

pub(crate) use bind_values;

impl Conn<'_> {
    /// Runs `s`; the rows it changed.
    pub async fn execute(&mut self, s: &Stmt<'_>) -> Result<u64, StoreError> {
        Ok(match self {
            Conn::Sqlite(c) => bind_values!(sqlx::query(sqlx::AssertSqlSafe(s.sql.to_string())), &s.values).execute(&mut **c).await?.rows_affected(),
            Conn::Postgres(c) => {
                let sql = numbered(&s.sql).into_owned();
                bind_values!(sqlx::query(sqlx::AssertSqlSafe(sql)), &s.values).execute(&mut **c).await?.rows_affected()
            }
        })
    }

    /// Every row of `s`.
    pub async fn fetch_all<T: Rows>(&mut self, s: &Stmt<'_>) -> Result<Vec<T>, StoreError> {
        Ok(match self {
            Conn::Sqlite(c) => bind_values!(sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(s.sql.to_string())), &s.values).fetch_all(&mut **c).await?,
            Conn::Postgres(c) => {
                let sql = numbered(&s.sql).into_owned();
                bind_values!(sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql)), &s.values).fetch_all(&mut **c).await?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(numbered("SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)"), "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)");
        assert!(matches!(numbered("SELECT 1"), Cow::Borrowed(_)));
    }
}
