//! Rows of any of the three drivers turned into one owned shape, so that the directory logic is
//! written once. Text and bytes are both accepted (MySQL hands VARBINARY/BLOB columns, and
//! many expressions over them, to clients as bytes); anything else is kept as its SQL type
//! name, for a clear "wrong column type" error.

use postern_directory::DirectoryError;
use sqlx::{Column, ColumnIndex, Decode, Row, Type, TypeInfo};
use zeroize::Zeroizing;

pub(crate) enum Cell {
    Null,
    Text(Zeroizing<String>),
    Bytes(Zeroizing<Vec<u8>>),
    /// A value of a non-text SQL type, by type name.
    Other(String),
}

#[derive(Default)]
pub(crate) struct Table {
    /// Column names, lower-cased (PostgreSQL folds unquoted aliases, MySQL keeps their case).
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// More rows existed than were read.
    pub truncated: bool,
}

impl Table {
    pub fn push<R>(&mut self, row: &R)
    where
        R: Row,
        usize: ColumnIndex<R>,
        for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
        for<'r> Option<Vec<u8>>: Decode<'r, R::Database> + Type<R::Database>,
    {
        if self.columns.is_empty() {
            self.columns = row
                .columns()
                .iter()
                .map(|c| c.name().to_ascii_lowercase())
                .collect();
        }
        let cells = (0..row.len())
            .map(|i| match row.try_get::<Option<String>, _>(i) {
                Ok(Some(s)) => Cell::Text(Zeroizing::new(s)),
                Ok(None) => Cell::Null,
                Err(_) => match row.try_get::<Option<Vec<u8>>, _>(i) {
                    Ok(Some(b)) => Cell::Bytes(Zeroizing::new(b)),
                    Ok(None) => Cell::Null,
                    Err(_) => {
                        let kind = row
                            .columns()
                            .get(i)
                            .map(|c| c.type_info().name().to_string())
                            .unwrap_or_default();
                        Cell::Other(kind)
                    }
                },
            })
            .collect();
        self.rows.push(cells);
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// The text of a cell; `None` for NULL. `what` names the query and column in errors.
pub(crate) fn text(cell: &Cell, what: &str) -> Result<Option<Zeroizing<String>>, DirectoryError> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Text(s) => Ok(Some(s.clone())),
        Cell::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => Ok(Some(Zeroizing::new(s.to_string()))),
            Err(_) => Err(DirectoryError::InvalidData(format!(
                "{what} is not valid UTF-8"
            ))),
        },
        Cell::Other(kind) => Err(DirectoryError::InvalidData(format!(
            "{what} has SQL type {kind}; expected text"
        ))),
    }
}

/// Non-secret text: a plain `String`.
pub(crate) fn plain(cell: &Cell, what: &str) -> Result<Option<String>, DirectoryError> {
    Ok(text(cell, what)?.map(|s| s.as_str().to_string()))
}
