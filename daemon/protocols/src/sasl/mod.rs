//! Server-side SASL mechanism state machines, independent of the transport that carries them.
//!
//! A [`Session`] is created per authentication request with the requested [`Mechanism`] and is
//! fed the client's messages (already base64-decoded by the transport). Each call to
//! [`Session::step`] returns a [`Step`]:
//!
//! * [`Step::Challenge`]: send these bytes as a challenge (dovecot `CONT`) and wait;
//! * [`Step::Credentials`]: the mechanism has everything; the engine checks them and the
//!   transport answers success or failure. For bearer mechanisms, a rejected token must go
//!   through [`Session::reject_token`], which yields the error challenge the RFC requires; the
//!   client's next (dummy) message then yields the final [`Step::Fail`];
//! * [`Step::Fail`]: the exchange is over and failed; [`SaslError::reason`] is safe to show.
//!
//! The state machine never performs I/O or credential checks, so it cannot block, and it never
//! reveals whether a user exists.

mod parse;

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

/// The challenge LOGIN sends first (`VXNlcm5hbWU6` in base64).
pub const LOGIN_USERNAME_CHALLENGE: &[u8] = b"Username:";
/// The challenge LOGIN sends second (`UGFzc3dvcmQ6` in base64).
pub const LOGIN_PASSWORD_CHALLENGE: &[u8] = b"Password:";
/// XOAUTH2 failure challenge, byte for byte what Dovecot 2.3 sends.
pub const XOAUTH2_ERROR_JSON: &str = r#"{"status":"401","schemes":"bearer","scope":"mail"}"#;
/// OAUTHBEARER failure challenge (RFC 7628 §3.2.2), byte for byte what Dovecot 2.3 sends.
pub const OAUTHBEARER_ERROR_JSON: &str = r#"{"status":"invalid_token"}"#;

/// The mechanisms this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    Login,
    XOAuth2,
    OAuthBearer,
}

impl Mechanism {
    /// Every implemented mechanism, in the order Dovecot advertises them.
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::Login,
        Mechanism::XOAuth2,
        Mechanism::OAuthBearer,
    ];

    /// Canonical (upper-case) name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::Login => "LOGIN",
            Self::XOAuth2 => "XOAUTH2",
            Self::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Case-insensitive lookup (Dovecot upper-cases the requested name before its lookup).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// The client's secret crosses the wire in the clear: only offer or accept it on a secured
    /// connection unless the operator allows plaintext. True for all four.
    pub fn is_plaintext(self) -> bool {
        true
    }

    /// XOAUTH2 and OAUTHBEARER: they yield [`Credentials::Bearer`].
    pub fn is_bearer(self) -> bool {
        matches!(self, Self::XOAuth2 | Self::OAuthBearer)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a finished mechanism hands to the engine. `Debug` never prints the secret.
pub enum Credentials {
    /// PLAIN or LOGIN: the authentication identity and its password (any authzid equals it).
    Password {
        authcid: Arc<str>,
        password: Zeroizing<String>,
    },
    /// XOAUTH2 (`user` always present) or OAUTHBEARER (`user` = the gs2 authzid, optional): the
    /// engine validates the token and checks that it belongs to `user` when given.
    Bearer {
        user: Option<String>,
        token: Zeroizing<String>,
    },
}

impl Credentials {
    /// The user name the client claimed, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::Password { authcid, .. } => Some(authcid),
            Self::Bearer { user, .. } => user.as_deref(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Password { authcid, .. } => f
                .debug_struct("Password")
                .field("authcid", authcid)
                .field("password", &"<redacted>")
                .finish(),
            Self::Bearer { user, .. } => f
                .debug_struct("Bearer")
                .field("user", user)
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

/// Outcome of one [`Session::step`].
#[derive(Debug)]
pub enum Step {
    /// Send this challenge (possibly empty) and feed the answer to the next `step`.
    Challenge(Vec<u8>),
    /// Verify these; then answer success, call [`Session::reject_token`] (bearer mechanisms), or
    /// simply answer failure (password mechanisms).
    Credentials(Credentials),
    /// The exchange failed and is over.
    Fail(SaslError),
}

/// Why a mechanism failed. `Display` is for logs; [`SaslError::reason`] is for the end user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("malformed {mechanism} message: {detail}")]
    Malformed {
        mechanism: Mechanism,
        detail: &'static str,
    },
    #[error("{0} message is not valid UTF-8")]
    InvalidUtf8(Mechanism),
    #[error("empty user name")]
    EmptyUser,
    #[error("empty password")]
    EmptyPassword,
    #[error("impersonation not allowed: {authcid} asked to act as {authzid}")]
    ImpersonationNotAllowed { authzid: String, authcid: String },
    #[error("OAUTHBEARER channel binding is not supported")]
    ChannelBindingUnsupported,
    #[error("bearer token rejected")]
    TokenRejected,
    #[error("unexpected client message in this state")]
    UnexpectedStep,
}

impl SaslError {
    /// A short text safe to show to the end user (dovecot `reason=`): it never tells whether the
    /// user exists or which part of the credentials was wrong.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ImpersonationNotAllowed { .. } => "Impersonation not allowed",
            Self::ChannelBindingUnsupported => "Channel binding not supported",
            Self::TokenRejected | Self::EmptyPassword => "Authentication failed",
            _ => "Invalid input",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// PLAIN / bearer mechanisms: waiting for the client's only message after an empty
    /// challenge.
    AwaitMessage,
    AwaitLoginUser,
    AwaitLoginPassword,
    /// Credentials were handed out; waiting for the engine's verdict.
    Verifying,
    /// Bearer token rejected, error challenge sent; waiting for the client's dummy message.
    AwaitErrorAck,
    Done,
}

/// One server-side SASL exchange. `Debug` prints the state and the claimed user name only.
#[derive(Debug, Clone)]
pub struct Session {
    mechanism: Mechanism,
    state: State,
    user: Option<Arc<str>>,
}

impl Session {
    /// A new exchange; the first [`Session::step`] takes the initial response.
    pub fn new(mechanism: Mechanism) -> Self {
        Self {
            mechanism,
            state: State::Start,
            user: None,
        }
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The user name the client has claimed so far (PLAIN authcid, LOGIN user name, XOAUTH2
    /// `user=`, OAUTHBEARER `a=`), for the optional `user=` of a failure reply and for logs.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether the exchange is over (failed); a session that returned credentials is finished
    /// from the transport's point of view unless it calls [`Session::reject_token`].
    pub fn is_finished(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds one client message. On the first call `None` means "no initial response" and
    /// `Some(b"")` an empty one (PLAIN and the bearer mechanisms then fail or challenge
    /// accordingly, as in Dovecot); on later calls `None` is the same as an empty response.
    pub fn step(&mut self, client_data: Option<&[u8]>) -> Step {
        let data = client_data.unwrap_or_default();
        match (self.state, self.mechanism) {
            (State::Start, Mechanism::Login) if data.is_empty() => {
                self.state = State::AwaitLoginUser;
                Step::Challenge(LOGIN_USERNAME_CHALLENGE.to_vec())
            }
            (State::Start, Mechanism::Login) | (State::AwaitLoginUser, _) => {
                self.finish_login_user(data)
            }
            (State::Start, _) if client_data.is_none() => {
                self.state = State::AwaitMessage;
                Step::Challenge(Vec::new())
            }
            (State::Start | State::AwaitMessage, Mechanism::Plain) => {
                let result = parse::plain(data, &mut self.user);
                self.conclude(result)
            }
            (State::Start | State::AwaitMessage, Mechanism::XOAuth2) => {
                let result = parse::xoauth2(data, &mut self.user);
                self.conclude(result)
            }
            (State::Start | State::AwaitMessage, Mechanism::OAuthBearer) => {
                let result = parse::oauthbearer(data, &mut self.user);
                self.conclude(result)
            }
            (State::AwaitLoginPassword, _) => {
                let user = self.user.clone().unwrap_or_else(|| Arc::from(""));
                let result = parse::login_password(data).map(|password| Credentials::Password {
                    authcid: user,
                    password,
                });
                self.conclude(result)
            }
            (State::AwaitErrorAck, _) => self.fail(SaslError::TokenRejected),
            (State::AwaitMessage | State::Verifying | State::Done, _) => {
                self.fail(SaslError::UnexpectedStep)
            }
        }
    }

    /// The engine rejected the bearer token returned in [`Step::Credentials`]: returns the
    /// error challenge ([`XOAUTH2_ERROR_JSON`], or for OAUTHBEARER [`OAUTHBEARER_ERROR_JSON`]
    /// extended with `openid-configuration` when `openid_configuration` is given). The client's
    /// next message, whatever it is, then yields `Step::Fail(SaslError::TokenRejected)`. Called
    /// in any other situation it fails the session with [`SaslError::UnexpectedStep`].
    pub fn reject_token(&mut self, openid_configuration: Option<&str>) -> Step {
        if self.state != State::Verifying || !self.mechanism.is_bearer() {
            return self.fail(SaslError::UnexpectedStep);
        }
        self.state = State::AwaitErrorAck;
        let json = match (self.mechanism, openid_configuration) {
            (Mechanism::OAuthBearer, Some(url)) => format!(
                r#"{{"status":"invalid_token","openid-configuration":"{}"}}"#,
                json_escape(url)
            ),
            (Mechanism::OAuthBearer, None) => OAUTHBEARER_ERROR_JSON.to_owned(),
            _ => XOAUTH2_ERROR_JSON.to_owned(),
        };
        Step::Challenge(json.into_bytes())
    }

    fn finish_login_user(&mut self, data: &[u8]) -> Step {
        match parse::login_user(data) {
            Ok(user) => {
                self.user = Some(user);
                self.state = State::AwaitLoginPassword;
                Step::Challenge(LOGIN_PASSWORD_CHALLENGE.to_vec())
            }
            Err(err) => self.fail(err),
        }
    }

    fn conclude(&mut self, result: Result<Credentials, SaslError>) -> Step {
        match result {
            Ok(credentials) => {
                self.state = State::Verifying;
                Step::Credentials(credentials)
            }
            Err(err) => self.fail(err),
        }
    }

    fn fail(&mut self, err: SaslError) -> Step {
        self.state = State::Done;
        Step::Fail(err)
    }
}

/// Minimal JSON string escaping for the discovery URL (an operator-configured value).
fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
