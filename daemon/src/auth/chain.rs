//! The directory chain of `[authentication] directories`, and the names the engine gives to how
//! a client authenticated.

use std::sync::Arc;

use postern_directory::Directory;
use postern_internal::InternalDirectory;

/// One directory of the chain. The internal directory is its own variant: the engine takes the
/// records it read (account, app password) instead of reading them again.
#[derive(Clone)]
pub enum Link {
    Internal(Arc<InternalDirectory>),
    External(Arc<dyn Directory>),
}

impl Link {
    pub fn name(&self) -> &str {
        self.directory().name()
    }

    /// The directory through the contract every directory shares (health, pools).
    pub fn directory(&self) -> &dyn Directory {
        match self {
            Link::Internal(d) => d.as_ref(),
            Link::External(d) => d.as_ref(),
        }
    }
}

/// The mechanism a client used, as the `mechanism` label of
/// `postern_auth_requests_total` names it: a closed set whatever a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
    XOAuth2,
    OAuthBearer,
    /// A JSON login body, or saslauthd's user and password.
    Password,
    /// `Authorization: Basic`.
    Basic,
    /// An external provider's login flow (OIDC callback).
    Oidc,
}

impl Mechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "plain",
            Mechanism::Login => "login",
            Mechanism::XOAuth2 => "xoauth2",
            Mechanism::OAuthBearer => "oauthbearer",
            Mechanism::Password => "password",
            Mechanism::Basic => "basic",
            Mechanism::Oidc => "oidc",
        }
    }
}

impl From<postern_protocols::sasl::Mechanism> for Mechanism {
    fn from(m: postern_protocols::sasl::Mechanism) -> Self {
        use postern_protocols::sasl::Mechanism as Sasl;
        match m {
            Sasl::Plain => Mechanism::Plain,
            Sasl::Login => Mechanism::Login,
            Sasl::XOAuth2 => Mechanism::XOAuth2,
            Sasl::OAuthBearer => Mechanism::OAuthBearer,
        }
    }
}

/// Which credential a principal's session stands on: the session view's `mechanism` and the
/// `kind` of `postern_sessions_issued_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    AppPassword,
    ApiKey,
    /// An identity proven by an external provider (OIDC login, a provider's token).
    Oidc,
    /// One of this server's own OAuth access tokens.
    OAuth,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::AppPassword => "app-password",
            Method::ApiKey => "api-key",
            Method::Oidc => "oidc",
            Method::OAuth => "oauth",
        }
    }

    /// Back from a stored session view.
    pub fn parse(text: &str) -> Option<Method> {
        [
            Method::Password,
            Method::AppPassword,
            Method::ApiKey,
            Method::Oidc,
            Method::OAuth,
        ]
        .into_iter()
        .find(|m| m.as_str() == text)
    }
}
