//! One connection's request table: AUTH / CONT / CANCEL handling, the verifications under
//! way, and the answers to their results.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::stream::{FuturesUnordered, StreamExt};

use postern_directory::Credential;
use postern_protocols::dovecot::{
    self, ClientLine, ClientState, Disposition, FailCode, ParseError,
};
use postern_protocols::sasl::{Credentials, Mechanism, SaslError, Session, Step};
use tokio::time::Instant;

use super::Server;
use crate::auth::bearer::BearerAttempt;
use crate::auth::{Frontend, LoginError, PasswordAttempt, Principal};
use crate::authz::Service;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    Continue,
    Disconnect,
}

struct Ctx {
    service: String,
    remote_ip: Option<IpAddr>,
    serial: u64,
}

enum Pending {
    /// A challenge was sent; waiting for the client's `CONT`.
    Waiting {
        session: Session,
        ctx: Ctx,
        deadline: Instant,
    },
    /// Credentials are being verified (a future in [`Conn::verifications`]).
    Verifying { session: Session, ctx: Ctx },
}

/// A verification's result.
pub(super) struct Done {
    id: u32,
    serial: u64,
    result: Result<Principal, LoginError>,
}

/// One verification under way: the engine's login, then the failure delay if it failed.
type Verification = Pin<Box<dyn Future<Output = Done> + Send>>;

/// A connection's verifications, polled by the connection's own task rather than spawned one
/// task each: a spawn links the task into the runtime's list of every task, touching the
/// memory of neighbours that are mostly other (idle, cold) connections, and costs allocations
/// a login does not need. One connection's requests still run concurrently (the hash itself
/// runs on a hashing thread), and connections run on every core.
pub(super) type Verifications = FuturesUnordered<Verification>;

pub(super) struct Conn {
    server: Arc<Server>,
    /// Answers not yet written (the server loop writes them: [`Conn::output`]).
    output: String,
    verifications: Verifications,
    pending: HashMap<u32, Pending>,
    /// Serials of requests cancelled while being verified: their verifications still run (the
    /// hash cannot be stopped), so each keeps its place under `max_in_flight` until its result
    /// comes back. Otherwise `AUTH` + `CANCEL` repeated would queue hash work without bound.
    cancelled: HashSet<u64>,
    state: ClientState,
    serial: u64,
}

impl Conn {
    pub(super) fn new(server: Arc<Server>) -> Conn {
        Conn {
            server,
            output: String::new(),
            verifications: FuturesUnordered::new(),
            pending: HashMap::new(),
            cancelled: HashSet::new(),
            state: ClientState::new(),
            serial: 0,
        }
    }

    /// No request open: the idle timeout applies.
    pub(super) fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Queues one answer line for the server loop to write.
    pub(super) fn send(&mut self, line: &str) {
        self.output.push_str(line);
    }

    /// Answers queued and not yet written.
    pub(super) fn output(&self) -> &str {
        &self.output
    }

    pub(super) fn output_len(&self) -> usize {
        self.output.len()
    }

    /// The queued answers were written. The buffer is kept for the next ones unless a burst
    /// grew it: an idle connection holds little.
    pub(super) fn written(&mut self) {
        self.output.clear();
        if self.output.capacity() > OUTPUT_KEEP_CAPACITY {
            self.output = String::new();
        }
    }

    /// Verifications under way, cancelled ones included.
    pub(super) fn has_verifications(&self) -> bool {
        !self.verifications.is_empty()
    }

    /// The next verification to end; pending forever while none is under way (for `select!`).
    pub(super) async fn next_done(&mut self) -> Done {
        match self.verifications.next().await {
            Some(done) => done,
            None => std::future::pending().await,
        }
    }

    /// The verifications still under way, to be run to their end once the connection is gone:
    /// a login's outcome is still recorded (its throttle count, its log line), as it was when
    /// each ran in a task of its own.
    /// With them, the answers not yet written.
    pub(super) fn into_parts(self) -> (Verifications, String) {
        (self.verifications, self.output)
    }

    pub(super) fn verifying(&self) -> usize {
        self.pending
            .values()
            .filter(|p| matches!(p, Pending::Verifying { .. }))
            .count()
    }

    pub(super) fn forget_waiting(&mut self) {
        self.pending
            .retain(|_, p| matches!(p, Pending::Verifying { .. }));
    }

    pub(super) fn reap(&mut self) {
        let now = Instant::now();
        self.pending.retain(|id, p| match p {
            Pending::Waiting { deadline, .. } if *deadline <= now => {
                tracing::debug!(
                    id,
                    "dovecot-auth request abandoned by the client; forgotten"
                );
                false
            }
            _ => true,
        });
    }

    pub(super) fn line(&mut self, line: &[u8]) -> Flow {
        let parsed = self.state.accept(line);
        let result = match parsed {
            Ok(ClientLine::Version { .. } | ClientLine::Cpid(_)) => Ok(()),
            Ok(ClientLine::Auth(req)) => self.auth(req),
            Ok(ClientLine::Cont { id, data }) => self.cont(id, &data),
            Ok(ClientLine::Cancel { id }) => {
                // Forgotten at once (its id free again, its answer sent to nobody), but a
                // verification still running keeps its slot until it ends.
                if let Some(Pending::Verifying { ctx, .. }) = self.pending.remove(&id) {
                    self.cancelled.insert(ctx.serial);
                }
                Ok(())
            }
            Err(e) => match (e.disposition(), e.fail_reply()) {
                (Disposition::FailRequest { id }, Some(reply)) => {
                    let initial = matches!(e, ParseError::InvalidBase64 { initial: true, .. });
                    match self.pending.get(&id) {
                        // An AUTH reusing an open id, or a CONT for a request being verified
                        // (which will be answered): client bugs, as without the bad base64.
                        Some(Pending::Verifying { .. }) => Err("request busy"),
                        Some(Pending::Waiting { .. }) if initial => Err("duplicate id"),
                        waiting => {
                            if waiting.is_some() {
                                self.pending.remove(&id);
                            }
                            self.send(&reply);
                            Ok(())
                        }
                    }
                }
                _ => {
                    tracing::warn!(error = %e, "dovecot-auth client protocol error; disconnecting");
                    Err("protocol error")
                }
            },
        };
        match result {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Disconnect,
        }
    }

    fn auth(&mut self, req: dovecot::AuthRequest) -> Result<(), &'static str> {
        let id = req.id;
        if self.pending.contains_key(&id) {
            tracing::warn!(
                id,
                "dovecot-auth client reused an open request id; disconnecting"
            );
            return Err("duplicate id");
        }
        let Some(mechanism) =
            Mechanism::from_name(&req.mechanism).filter(|m| self.server.offered.contains(m))
        else {
            tracing::warn!(mechanism = %req.mechanism.escape_debug(), "dovecot-auth client asked for a mechanism not offered; disconnecting");
            return Err("unsupported mechanism");
        };
        if self.pending.len() + self.cancelled.len() >= self.server.limits.max_in_flight {
            let reason = "Too many authentication requests in progress";
            self.fail(id, None, Some(FailCode::TempFail), Some(reason), true);
            return Ok(());
        }
        if let Err(e) = Service::resolve(&req.service, &self.server.settings.services) {
            // Fail closed: a service no rule knows would otherwise need `authenticate` only.
            tracing::info!(id, error = %e, "dovecot-auth request refused: unknown service (add it to the listener's services to allow it)");
            self.server.engine.refused(
                Frontend::DovecotAuth,
                mechanism.into(),
                None,
                "unknown service",
            );
            self.fail(id, None, None, Some("Unknown service"), false);
            return Ok(());
        }
        if mechanism.is_plaintext()
            && !self.server.settings.allow_plaintext
            && !req.counts_as_secured()
        {
            tracing::info!(id, mechanism = mechanism.name(), "dovecot-auth request refused: plaintext mechanism on a connection the client did not mark secured (allow-plaintext is off)");
            self.server.engine.refused(
                Frontend::DovecotAuth,
                mechanism.into(),
                None,
                "plaintext mechanism on an unsecured connection",
            );
            let reason = "Plaintext authentication disallowed on non-secure (SSL/TLS) connections";
            self.fail(
                id,
                None,
                Some(FailCode::MechSslRequired),
                Some(reason),
                false,
            );
            return Ok(());
        }
        self.serial += 1;
        let ctx = Ctx {
            service: req.service,
            remote_ip: req.remote_ip,
            serial: self.serial,
        };
        let mut session = Session::new(mechanism);
        let step = session.step(req.initial_response.as_deref().map(Vec::as_slice));
        self.advance(id, session, ctx, step)
    }

    fn cont(&mut self, id: u32, data: &[u8]) -> Result<(), &'static str> {
        match self.pending.remove(&id) {
            None => {
                self.send(&dovecot::request_timed_out(id));
                Ok(())
            }
            Some(Pending::Waiting {
                mut session, ctx, ..
            }) => {
                let step = session.step(Some(data));
                self.advance(id, session, ctx, step)
            }
            Some(Pending::Verifying { .. }) => {
                tracing::warn!(
                    id,
                    "dovecot-auth client sent CONT for a request being verified; disconnecting"
                );
                Err("cont while verifying")
            }
        }
    }

    fn advance(
        &mut self,
        id: u32,
        session: Session,
        mut ctx: Ctx,
        step: Step,
    ) -> Result<(), &'static str> {
        match step {
            Step::Challenge(challenge) => {
                let deadline = Instant::now() + self.server.limits.request_timeout;
                self.pending.insert(
                    id,
                    Pending::Waiting {
                        session,
                        ctx,
                        deadline,
                    },
                );
                self.send(&dovecot::cont(id, &challenge));
                Ok(())
            }
            Step::Credentials(credentials) => {
                // The name moves into the verification: after it the request needs only its
                // serial (an exchange whose bearer token was rejected can only fail next,
                // never be verified again).
                let service = std::mem::take(&mut ctx.service);
                let verification = self.verify(id, session.mechanism(), service, &ctx, credentials);
                self.verifications.push(verification);
                self.pending.insert(id, Pending::Verifying { session, ctx });
                Ok(())
            }
            Step::Fail(err) => {
                tracing::debug!(id, error = %err, "dovecot-auth SASL exchange failed");
                // A rejected token was already counted by the engine; malformed exchanges never
                // reached it and are counted here.
                if err != SaslError::TokenRejected {
                    self.server.engine.refused(
                        Frontend::DovecotAuth,
                        session.mechanism().into(),
                        session.user(),
                        err.reason(),
                    );
                }
                self.fail(id, session.user(), None, Some(err.reason()), false);
                Ok(())
            }
        }
    }

    fn verify(
        &self,
        id: u32,
        mechanism: Mechanism,
        service: String,
        ctx: &Ctx,
        credentials: Credentials,
    ) -> Verification {
        let server = self.server.clone();
        let (remote_ip, serial) = (ctx.remote_ip, ctx.serial);
        Box::pin(async move {
            let engine = &server.engine;
            let delay = server.limits.failure_delay;
            // Resolved when the request arrived; refused there if unknown.
            let service = match Service::resolve(&service, &server.settings.services) {
                Ok(s) => s,
                Err(_) => {
                    let result = Err(LoginError::InvalidCredentials);
                    return Done { id, serial, result };
                }
            };
            let result = match credentials {
                Credentials::Password { authcid, password } => {
                    engine
                        .login(PasswordAttempt {
                            frontend: Frontend::DovecotAuth,
                            mechanism: mechanism.into(),
                            username: &authcid,
                            // Moved, not copied: one allocation fewer, and no second copy to zeroize.
                            password: Credential::Password(password),
                            service,
                            remote_ip,
                        })
                        .await
                }
                // Boxed: a bearer check's future (a provider's keys fetched, the token
                // cache) is larger than a password login's, which would carry its size.
                Credentials::Bearer { user, token } => {
                    Box::pin(engine.login_bearer(BearerAttempt {
                        frontend: Frontend::DovecotAuth,
                        mechanism: mechanism.into(),
                        token: &token,
                        claimed_user: user.as_deref(),
                        service,
                        remote_ip,
                    }))
                    .await
                }
            };
            if matches!(
                result,
                Err(LoginError::InvalidCredentials | LoginError::InvalidRequest(_))
            ) {
                tokio::time::sleep(engine.failure_delay(delay, remote_ip)).await;
            }
            Done { id, serial, result }
        })
    }

    pub(super) fn finished(&mut self, done: Done) -> Flow {
        if self.cancelled.remove(&done.serial) {
            return Flow::Continue;
        }
        let session = match self.pending.remove(&done.id) {
            Some(Pending::Verifying { session, ctx }) if ctx.serial == done.serial => {
                (session, ctx)
            }
            Some(other) => {
                // Cancelled, and the id reused since: not this result's request.
                self.pending.insert(done.id, other);
                return Flow::Continue;
            }
            None => return Flow::Continue,
        };
        let (mut session, ctx) = session;
        let id = done.id;
        let sent = match done.result {
            Ok(principal) => {
                dovecot::write_ok(&mut self.output, id, &principal.name, &[]);
                Ok(())
            }
            Err(LoginError::InvalidCredentials) if session.mechanism().is_bearer() => {
                let step = session.reject_token(None);
                self.advance(id, session, ctx, step)
            }
            Err(e) => {
                self.failure(id, session.user(), &e);
                Ok(())
            }
        };
        match sent {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Disconnect,
        }
    }
}

impl Conn {
    /// Queues a `FAIL` line ([`dovecot::fail`]).
    fn fail(
        &mut self,
        id: u32,
        user: Option<&str>,
        code: Option<FailCode>,
        reason: Option<&str>,
        temp: bool,
    ) {
        dovecot::write_fail(&mut self.output, id, user, code, reason, temp);
    }

    /// Queues the `FAIL` line for an engine refusal: outages and broken accounts are
    /// temporary, never "wrong password".
    fn failure(&mut self, id: u32, user: Option<&str>, e: &LoginError) {
        match e {
            LoginError::InvalidCredentials | LoginError::InvalidRequest(_) => {
                self.fail(id, user, None, Some("Authentication failed"), false)
            }
            LoginError::RateLimited(_) => self.fail(
                id,
                user,
                None,
                Some("Too many failed attempts; try again later"),
                true,
            ),
            LoginError::Unavailable | LoginError::Misconfigured => self.fail(
                id,
                user,
                Some(FailCode::TempFail),
                Some("Temporary authentication failure"),
                true,
            ),
        }
    }
}

/// What an emptied output buffer keeps for the next answers.
const OUTPUT_KEEP_CAPACITY: usize = 1024;
