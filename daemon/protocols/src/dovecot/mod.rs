//! Server side of the Dovecot authentication protocol 1.2, as Postfix (`smtpd_sasl_type =
//! dovecot`) and Exim (`driver = dovecot`) speak it.
//!
//! The protocol is line based (LF, TAB-separated fields), and the server speaks first. A server
//! loop built on this module looks like:
//!
//! 1. on accept, write [`handshake`] (MECH lines before SPID: Postfix and Exim use "SPID before
//!    any MECH" to detect a wrong socket);
//! 2. feed socket reads into a [`LineReader`] and hand each complete line to
//!    [`ClientState::accept`], which enforces the client handshake (VERSION first, then CPID) and
//!    parses with the negotiated minor version (it changes what an empty `resp=` means);
//! 3. for [`ClientLine::Auth`] / [`ClientLine::Cont`], drive a [`crate::sasl::Session`] per
//!    request id and answer with [`ok`], [`cont`] or [`fail`];
//! 4. on a [`ParseError`], ask [`ParseError::disposition`]: either answer the ready-made
//!    [`ParseError::fail_reply`] for that id and keep going, or close the connection (that is
//!    what Dovecot does on protocol violations, and closing is also the only way to make Postfix
//!    answer a temporary 454).
//!
//! Timers (failure delay, reaping requests abandoned mid-exchange, the "timed out" answer to a
//! CONT for an unknown id via [`request_timed_out`]) belong to the server loop.

mod reply;
mod request;

pub use reply::{
    cont, fail, handshake, ok, request_timed_out, write_fail, write_ok, FailCode, MechAdvert,
    MechFlag, MAX_ECHO_LEN,
};
pub use request::{
    parse_client_line, AuthRequest, ClientLine, ClientState, Disposition, ParseError,
};

use std::borrow::Cow;

/// Protocol major version this server speaks; a client announcing another major is dropped.
pub const MAJOR_VERSION: u32 = 1;
/// Protocol minor version this server announces (`VERSION\t1\t2`).
pub const MINOR_VERSION: u32 = 2;
/// Longest client line accepted, counting its terminating LF. Dovecot 2.3 uses the same limit
/// (`AUTH_CLIENT_MAX_LINE_LENGTH`) and drops a client that exceeds it.
pub const MAX_LINE_LENGTH: usize = 16384;

const ESCAPE: char = '\x01';

/// Dovecot tab-escaping of one field value: NUL, 0x01, TAB, CR and LF become 0x01 followed by
/// `0`, `1`, `t`, `r`, `n`. Borrowed when nothing needs escaping (the common case).
pub fn escape(value: &str) -> Cow<'_, str> {
    if !value.contains(['\0', ESCAPE, '\t', '\r', '\n']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\0' => out.push_str("\x010"),
            ESCAPE => out.push_str("\x011"),
            '\t' => out.push_str("\x01t"),
            '\r' => out.push_str("\x01r"),
            '\n' => out.push_str("\x01n"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Inverse of [`escape`], with Dovecot's leniency: an unknown escape yields the escaped
/// character itself, and a trailing lone 0x01 is kept as is.
pub fn unescape(value: &str) -> Cow<'_, str> {
    if !value.contains(ESCAPE) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != ESCAPE {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some('1') => out.push(ESCAPE),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push(ESCAPE),
        }
    }
    Cow::Owned(out)
}

/// The client sent a line longer than [`MAX_LINE_LENGTH`]; the connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("client line longer than {MAX_LINE_LENGTH} bytes")]
pub struct LineTooLong;

/// What [`LineReader::read_into`] reserves when the buffer has less than [`READ_MIN_SPARE`] free.
pub const READ_CHUNK: usize = 1024;
/// The least room [`LineReader::read_into`] leaves for one read.
pub const READ_MIN_SPARE: usize = 256;
/// The most an emptied [`LineReader`] keeps for the next line.
pub const READ_KEEP_CAPACITY: usize = 4096;

/// Splits a byte stream into LF-terminated lines without any I/O: push what the socket gave,
/// then pop lines until `Ok(None)`. Pipelined input (Exim writes VERSION, CPID and AUTH in one
/// write) simply yields several lines. A CR before the LF is stripped, as Dovecot does.
///
/// Lines are lent out of the buffer, not copied: consumed bytes are only dropped from its front
/// when the next read needs the room (usually nothing is left to move then).
#[derive(Debug, Default)]
pub struct LineReader {
    buf: Vec<u8>,
    /// Start of the bytes not yet returned as a line.
    start: usize,
    /// Bytes of `buf` up to here are known to contain no LF, so a slow writer costs O(n)
    /// overall.
    scanned: usize,
}

impl LineReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// Drops the lines already returned from the front of the buffer.
    fn compact(&mut self) {
        let start = self.start.min(self.buf.len());
        if start > 0 {
            self.buf.drain(..start);
            self.scanned = self.scanned.saturating_sub(start);
        }
        self.start = 0;
    }

    /// The buffer to read the socket straight into (appending only; then
    /// [`LineReader::next_line`]), with room for at least [`READ_MIN_SPARE`] bytes. A buffer
    /// that grew past [`READ_KEEP_CAPACITY`] for a long line is given back once emptied, so a
    /// connection holds about [`READ_CHUNK`] bytes while idle rather than a fixed read buffer
    /// of its own (10,000 idle connections are a normal load for a mail server).
    pub fn read_into(&mut self) -> &mut Vec<u8> {
        self.compact();
        if self.buf.is_empty() && self.buf.capacity() > READ_KEEP_CAPACITY {
            self.buf = Vec::new();
        }
        if self.buf.capacity() - self.buf.len() < READ_MIN_SPARE {
            self.buf.reserve(READ_CHUNK);
        }
        &mut self.buf
    }

    /// Bytes the reader holds room for (what an idle connection costs).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether a line has been started and not finished.
    pub fn has_partial(&self) -> bool {
        self.buffered() > 0
    }

    /// Bytes buffered but not yet returned as a line.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The next complete line without its terminator, `Ok(None)` when more input is needed, or
    /// [`LineTooLong`] once the pending line cannot fit in [`MAX_LINE_LENGTH`] (the reader is then
    /// unusable: close the connection).
    pub fn next_line(&mut self) -> Result<Option<&[u8]>, LineTooLong> {
        // Bytes are only ever appended behind our back ([`LineReader::read_into`]); should the
        // buffer ever be shorter, scan it all rather than panic.
        self.start = self.start.min(self.buf.len());
        if self.scanned > self.buf.len() || self.scanned < self.start {
            self.scanned = self.start;
        }
        let Some(offset) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') else {
            self.scanned = self.buf.len();
            return if self.buffered() >= MAX_LINE_LENGTH {
                Err(LineTooLong)
            } else {
                Ok(None)
            };
        };
        let end = self.scanned + offset;
        if end - self.start >= MAX_LINE_LENGTH {
            return Err(LineTooLong);
        }
        let begin = self.start;
        self.start = end + 1;
        self.scanned = self.start;
        let line = &self.buf[begin..end];
        Ok(Some(line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
