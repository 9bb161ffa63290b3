//! sqlx errors sorted into the two kinds of directory failure: the database could not be
//! reached or is overloaded (`Unavailable`: retry later, it recovers by itself), or it answered
//! and the answer cannot be used (`InvalidData`: a broken query or schema, needs an operator).
//! Both are temporary failures for the client; neither is ever a wrong password.

use postern_directory::DirectoryError;

/// `what`: the query key, for the log line. The message never contains the URL (it may carry
/// a password) or a password: only the login name is ever bound.
pub(crate) fn classify(what: &str, e: sqlx::Error) -> DirectoryError {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let transient =
                if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                    mysql_transient(my.number())
                } else if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    code.parse::<u32>().is_ok_and(sqlite_transient)
                } else {
                    postgres_transient(&code)
                };
            let message = format!("{what}: database error {code}: {}", db.message());
            if transient {
                DirectoryError::Unavailable(message)
            } else {
                DirectoryError::InvalidData(message)
            }
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::Encode(_) => DirectoryError::InvalidData(format!("{what}: {e}")),
        other => DirectoryError::Unavailable(format!("{what}: {other}")),
    }
}

/// SQLSTATE classes 08 connection exception, 53 insufficient resources, 57 operator
/// intervention (shutdown, cannot connect now), 58 system error; serialization failure and
/// deadlock.
fn postgres_transient(code: &str) -> bool {
    (code.len() == 5 && ["08", "53", "57", "58"].iter().any(|c| code.starts_with(c)))
        || matches!(code, "40001" | "40P01")
}

/// Too many connections, out of resources, shutdown in progress, lock wait, deadlock,
/// read-only server.
fn mysql_transient(number: u16) -> bool {
    matches!(number, 1040 | 1041 | 1053 | 1203 | 1205 | 1213 | 1290)
}

/// Primary result codes (the low byte of an extended code): busy, locked, I/O error, full,
/// cannot open.
fn sqlite_transient(code: u32) -> bool {
    matches!(code & 0xff, 5 | 6 | 10 | 13 | 14)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes() {
        assert!(postgres_transient("57P01"));
        assert!(postgres_transient("08006"));
        assert!(
            !postgres_transient("42601"),
            "syntax error is not transient"
        );
        assert!(mysql_transient(1040));
        assert!(
            !mysql_transient(1064),
            "MySQL syntax error is not transient"
        );
        assert!(
            sqlite_transient(5) && sqlite_transient(261),
            "busy, busy_recovery"
        );
        assert!(!sqlite_transient(1), "SQLite generic (syntax) error");
        let e = classify("query-login", sqlx::Error::PoolTimedOut);
        assert!(matches!(e, DirectoryError::Unavailable(_)), "{e}");
        let e = classify("query-login", sqlx::Error::ColumnNotFound("secret".into()));
        assert!(matches!(e, DirectoryError::InvalidData(_)), "{e}");
    }
}
