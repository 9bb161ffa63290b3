//! The dovecot-auth server loop (protocol 1.2, what Postfix and Exim speak), over any stream.
//!
//! One connection = one task that reads, owns the request table, polls the verifications under
//! way and writes the answers: they are gathered in the connection's output buffer and written
//! once the lines of one read (or one result) are handled, so a client that stops reading stops
//! being read, and a reply is made and freed on the same thread (a writer task of its own,
//! fed through a channel, freed every reply on another core, which left each core's allocator
//! cache empty). A verification's result updates the table before it is answered, so a client
//! reacting to a `CONT` always finds its request in place.
//!
//! Answers go out as requests finish, not in request order. Protocol violations (duplicate id,
//! unoffered mechanism, bad handshake, over-long line, `CONT` for a request being verified)
//! close the connection like Dovecot does; invalid base64 fails only that request.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use postern_protocols::dovecot::{self, LineReader, MechAdvert};
use postern_protocols::sasl::Mechanism;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Settings;
use crate::auth::Engine;

mod requests;

use requests::{Conn, Flow};

/// Per-connection limits (listener keys `max-requests-in-flight`, `request-timeout`,
/// `failure-delay`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests open at once on one connection (waiting for the client or being verified,
    /// cancelled ones too until their verification ends); more are refused with a temporary
    /// `FAIL`.
    pub max_in_flight: usize,
    /// A request waiting for the client's `CONT` longer than this is forgotten (Dovecot: 150 s);
    /// a later `CONT` is answered "timed out".
    pub request_timeout: Duration,
    /// Wrong credentials are answered after this delay (Dovecot's `auth_failure_delay`).
    pub failure_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_flight: 32,
            request_timeout: Duration::from_secs(150),
            failure_delay: Duration::from_secs(2),
        }
    }
}

impl Limits {
    /// The listener's keys, Dovecot's values for those it leaves out.
    pub fn from_config(l: &crate::config::ListenerConfig) -> Limits {
        let d = Limits::default();
        Limits {
            max_in_flight: l.max_requests_in_flight.unwrap_or(d.max_in_flight),
            request_timeout: l.request_timeout.unwrap_or(d.request_timeout),
            failure_delay: l.failure_delay.unwrap_or(d.failure_delay),
        }
    }
}

/// What every connection of one listener shares.
pub struct Server {
    engine: Arc<Engine>,
    settings: Settings,
    limits: Limits,
    offered: Vec<Mechanism>,
    adverts: Vec<MechAdvert>,
    spid: u32,
    next_cuid: AtomicU32,
}

impl Server {
    pub fn new(engine: Arc<Engine>, settings: Settings, limits: Limits) -> Server {
        let mut offered = Vec::new();
        for name in &settings.mechanisms {
            match Mechanism::from_name(name) {
                Some(m) if !offered.contains(&m) => offered.push(m),
                Some(_) => {}
                None => tracing::warn!(mechanism = %name, "unknown SASL mechanism not offered"),
            }
        }
        let adverts = offered.iter().map(|m| MechAdvert::from(*m)).collect();
        Server {
            engine,
            settings,
            limits,
            offered,
            adverts,
            spid: std::process::id(),
            next_cuid: AtomicU32::new(1),
        }
    }

    /// Serves one connection until the client leaves, breaks the protocol, idles out, or the
    /// listener stops (then the requests being verified are still answered).
    pub async fn handle<S>(
        self: Arc<Self>,
        stream: S,
        peer: Option<IpAddr>,
        mut stopping: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let mut stream = std::pin::pin!(stream);
        let cuid = self.next_cuid.fetch_add(1, Ordering::Relaxed);
        let cookie: [u8; 16] = rand::random();
        let idle = self.settings.idle_timeout;
        let reap_every = (self.limits.request_timeout / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(5));
        // A client that does not read what it is sent holds its slot no longer than this.
        let write_timeout = idle.min(WRITE_TIMEOUT);
        let mut c = Conn::new(self.clone());
        c.send(&dovecot::handshake(&self.adverts, self.spid, cuid, &cookie));
        if flush(&mut stream, &mut c, write_timeout).await.is_err() {
            return;
        }
        tracing::debug!(cuid, ?peer, "dovecot-auth client connected");
        // The socket is read straight into the line buffer: no read buffer of its own per
        // connection (what 10,000 idle connections cost is mostly what each holds).
        let mut lines = LineReader::new();
        let mut reading = true;
        let mut idle_deadline = Instant::now() + idle;
        // Any byte resets the idle deadline, so a client dripping one byte of a line that never
        // ends would hold its slot forever: a started line must end within this.
        let line_timeout = idle.min(LINE_TIMEOUT);
        let mut line_deadline: Option<Instant> = None;
        let mut reap = tokio::time::interval(reap_every);
        // Polled only while requests are open (below): ticks missed meanwhile are not made up.
        reap.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'conn: loop {
            if !reading && c.verifying() == 0 {
                break;
            }
            tokio::select! {
                done = c.next_done(), if c.has_verifications() => {
                    if c.finished(done) == Flow::Disconnect {
                        break;
                    }
                }
                read = stream.read_buf(lines.read_into()), if reading => match read {
                    Ok(0) | Err(_) => {
                        reading = false;
                        c.forget_waiting();
                    }
                    Ok(_) => {
                        idle_deadline = Instant::now() + idle;
                        loop {
                            match lines.next_line() {
                                Ok(Some(line)) => {
                                    // A new line starts after this one.
                                    line_deadline = None;
                                    if c.line(line) == Flow::Disconnect {
                                        break 'conn;
                                    }
                                    // Many short lines in one read: their answers are written
                                    // as they pile up, not held without bound.
                                    if c.output_len() >= FLUSH_AT
                                        && flush(&mut stream, &mut c, write_timeout).await.is_err()
                                    {
                                        break 'conn;
                                    }
                                }
                                Ok(None) => {
                                    if !lines.has_partial() {
                                        line_deadline = None;
                                    } else if line_deadline.is_none() {
                                        line_deadline = Some(Instant::now() + line_timeout);
                                    }
                                    break;
                                }
                                Err(e) => {
                                    tracing::warn!(cuid, error = %e, "dovecot-auth client sent an over-long line; disconnecting");
                                    break 'conn;
                                }
                            }
                        }
                    }
                },
                _ = tokio::time::sleep_until(idle_deadline), if reading && c.is_idle() => {
                    tracing::debug!(cuid, "dovecot-auth client idle; disconnecting");
                    break;
                }
                _ = sleep_until_some(line_deadline), if reading && line_deadline.is_some() => {
                    self.engine.count_refusal("dovecot-auth", "line_timeout");
                    tracing::info!(cuid, ?peer, "dovecot-auth client left a line unfinished for {line_timeout:?}; disconnecting");
                    break;
                }
                // Nothing to forget on a connection with no request open: an idle one is not
                // woken (10,000 idle connections were 2,000 wake-ups a second).
                _ = reap.tick(), if !c.is_idle() => c.reap(),
                changed = stopping.changed(), if reading => {
                    if changed.is_err() || *stopping.borrow() {
                        reading = false;
                        c.forget_waiting();
                    }
                }
            }
            if c.output_len() > 0 && flush(&mut stream, &mut c, write_timeout).await.is_err() {
                break;
            }
        }
        // The client is told at once (what is left to write, then the end of the stream), and
        // what was being verified runs to its end, unanswered.
        let (mut left, output) = c.into_parts();
        let drain = async { while left.next().await.is_some() {} };
        let close = async {
            let end = async {
                stream.write_all(output.as_bytes()).await?;
                stream.shutdown().await
            };
            let _ = tokio::time::timeout(write_timeout, end).await;
        };
        tokio::join!(drain, close);
    }
}

/// Answers gathered beyond this are written before the next line of the same read is handled.
const FLUSH_AT: usize = 16 * 1024;

/// The longest one write to a client may wait for it to read (or the listener's `idle-timeout`,
/// if shorter); then the connection is closed.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the connection's gathered answers; `Err` when the client is gone or stopped reading.
async fn flush<S: AsyncWrite>(
    stream: &mut std::pin::Pin<&mut S>,
    c: &mut Conn,
    timeout: Duration,
) -> Result<(), ()> {
    match tokio::time::timeout(timeout, stream.write_all(c.output().as_bytes())).await {
        Ok(Ok(())) => {
            c.written();
            Ok(())
        }
        _ => Err(()),
    }
}

/// The longest a started line may take to end (or the listener's `idle-timeout`, if shorter).
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
