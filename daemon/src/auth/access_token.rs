//! Postern's own OAuth access tokens, wherever a bearer is accepted (dovecot-auth XOAUTH2 and
//! OAUTHBEARER, nginx `auth_http`, `GET /auth/session`), and the engine's side of the OAuth
//! server: client authentication and the principal a client or a grant stands for, as the
//! store says now (a role change shows at once; a revoked token or grant is refused on every
//! daemon sharing the store).

use std::net::IpAddr;
use std::sync::Arc;

use postern_directory::secret::Verdict;
use postern_directory::PrincipalType;
use postern_internal::model::OAuthClient;
use postern_internal::store::oauth_grants::GrantRecord;
use postern_internal::store::StoredOAuthClient;
use postern_internal::{Store, StoreError};

use super::session::Bearer;
use super::throttle::Refusal;
use super::{Engine, LoginError, Method, Principal};
use crate::authz::engine::{Spec, Subject};
use crate::authz::Permission;
use crate::oauth::{AccessClaims, Authority, GrantBody};

/// The `sub` of a client acting for itself: never a person's (theirs are hex ids).
pub fn client_subject(client_id: &str) -> String {
    format!("client:{client_id}")
}

#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Unknown client, wrong or missing secret: one answer for all.
    #[error("client authentication failed")]
    Failed,
    #[error("temporarily unavailable")]
    Unavailable,
    /// Too many failed attempts for this client or from this address.
    #[error("too many failed attempts")]
    Throttled(std::time::Duration),
}

/// What [`Engine::access_tokens`] keeps of a verified access token (never the token).
pub struct VerifiedAccess {
    kid: String,
    claims: AccessClaims,
}

/// A verified access token and who it stands for now.
pub struct TokenPrincipal {
    pub claims: AccessClaims,
    pub principal: Principal,
}

impl Engine {
    pub fn oauth(&self) -> &Authority {
        &self.oauth
    }

    /// Counts an access token issued (`grant_type` is one of the three this server knows).
    pub fn count_oauth_token(&self, grant_type: &'static str) {
        self.metrics
            .oauth_tokens
            .with_label_values(&[grant_type])
            .inc();
    }

    /// The store, for the OAuth endpoints' grants, codes and consents.
    pub fn oauth_store(&self) -> &Store {
        &self.store
    }

    /// Authenticates a client. A confidential client needs its secret (verified on the hash
    /// pool, in constant time); a public client must present none. Unknown clients cost one
    /// verification like a known one.
    pub async fn authenticate_client(
        &self,
        client_id: &str,
        secret: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<StoredOAuthClient, ClientAuthError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "client authentication could not be checked");
            ClientAuthError::Unavailable
        };
        let client = if client_id.is_empty() || client_id.len() > 256 {
            None
        } else {
            self.store
                .oauth_client(client_id)
                .await
                .map_err(|e| unavailable(&e))?
        };
        let refused = |why: &str| {
            self.count_refusal("oauth", "invalid_client");
            tracing::info!(client = %client_id.escape_debug(), reason = why, "client authentication failed");
            ClientAuthError::Failed
        };
        // Guessing a client's secret is throttled like guessing a password: the same limits
        // per address and per client, shared by every daemon.
        let reservation = match secret {
            Some(_) => Some(
                self.throttle
                    .reserve(&format!("oauth-client:{client_id}"), ip)
                    .await
                    .map_err(|refusal| {
                        let wait = match refusal {
                            Refusal::Locked(wait) => wait,
                            Refusal::Busy => std::time::Duration::from_secs(1),
                        };
                        self.count_refusal("oauth", "throttled");
                        ClientAuthError::Throttled(wait)
                    })?,
            ),
            None => None,
        };
        let result = self.check_client(client, secret, ip, &refused).await;
        if let Some(r) = reservation {
            match &result {
                Ok(_) => r.succeeded(&format!("oauth-client:{client_id}")),
                Err(ClientAuthError::Failed) => r.failed(),
                Err(_) => r.release(),
            }
        }
        result
    }

    async fn check_client(
        &self,
        client: Option<StoredOAuthClient>,
        secret: Option<&str>,
        ip: Option<IpAddr>,
        refused: &(dyn Fn(&str) -> ClientAuthError + Sync),
    ) -> Result<StoredOAuthClient, ClientAuthError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "client authentication could not be checked");
            ClientAuthError::Unavailable
        };
        match (client, secret) {
            (None, Some(secret)) => {
                self.hasher
                    .burn(ip, secret)
                    .await
                    .map_err(|e| unavailable(&e))?;
                Err(refused("unknown client"))
            }
            (None, None) => Err(refused("unknown client")),
            (Some(c), None) if c.secret.is_none() => Ok(c),
            (Some(_), None) => Err(refused("secret missing")),
            (Some(c), Some(secret)) => {
                let Some(stored) = &c.secret else {
                    return Err(refused("public client sent a secret"));
                };
                match self
                    .hasher
                    .check(ip, stored.expose(), secret)
                    .await
                    .map_err(|e| unavailable(&e))?
                {
                    Verdict::Match => Ok(c),
                    Verdict::Mismatch => Err(refused("wrong secret")),
                    Verdict::Unverifiable(e) => {
                        tracing::error!(client = %c.client.client_id, error = %e, "client secret hash cannot be verified");
                        Err(refused("unverifiable secret"))
                    }
                }
            }
        }
    }

    /// A client acting for itself (`client_credentials`): a service principal with the
    /// client's own roles, permissions and tenant.
    pub fn client_principal(&self, c: &OAuthClient) -> Result<Principal, LoginError> {
        let misconfigured = |e: &dyn std::fmt::Display| {
            tracing::error!(client = %c.client_id, error = %e, "client principal failed closed");
            LoginError::Misconfigured
        };
        let spec = Spec::compile(&c.permissions).map_err(|n| misconfigured(&n.join(", ")))?;
        let subject = Subject {
            roles: c
                .roles
                .clone()
                .unwrap_or(postern_internal::model::RoleSet::List(Vec::new())),
            spec,
            member_of: Vec::new(),
            tenant: c.member_tenant_id.clone(),
        };
        let grant = self
            .policy()
            .evaluate(&subject)
            .map_err(|e| misconfigured(&e))?;
        Ok(Principal {
            id: client_subject(&c.client_id),
            name: c.client_id.clone(),
            kind: PrincipalType::Other,
            tenant: c.member_tenant_id.clone(),
            emails: Vec::new(),
            roles: grant.roles.into_iter().collect(),
            groups: grant.groups.into_iter().collect(),
            permissions: grant.effective,
            directory: "internal".into(),
            method: Method::OAuth,
        })
    }

    /// The person of a live grant, as their account is now; `None` when the account is gone,
    /// was replaced, or its credential ended.
    pub async fn grant_principal(
        &self,
        g: &GrantRecord,
        body: &GrantBody,
    ) -> Result<Option<Principal>, StoreError> {
        let Some(stored) = self.store.account(&g.account).await? else {
            return Ok(None);
        };
        if stored.id != body.sub {
            return Ok(None);
        }
        let credential = match &body.credential {
            Some(id) => {
                match self
                    .store
                    .credential(postern_internal::model::CredentialType::AppPassword, id)
                    .await?
                {
                    Some(c) if c.value.account == g.account => Some(c.value),
                    _ => return Ok(None),
                }
            }
            None => None,
        };
        let extra = if super::login::is_internal(&body.directory) {
            &[][..]
        } else {
            &body.groups[..]
        };
        Ok(self
            .evaluate(
                &stored,
                extra,
                &body.directory,
                Method::OAuth,
                credential.as_ref(),
            )
            .ok())
    }

    /// One of our access tokens, verified and not revoked, with its principal as it is now.
    /// `Ok(None)` for anything else.
    pub async fn access_token(&self, token: &str) -> Result<Option<TokenPrincipal>, StoreError> {
        let now = self.clock.unix();
        let claims = match self.verified_access(token, now).await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(crate::oauth::KeyError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, "signing keys unusable");
                return Ok(None);
            }
        };
        if self
            .store
            .access_token_revoked(&claims.jti, claims.grant.as_deref())
            .await?
        {
            return Ok(None);
        }
        let principal = match &claims.grant {
            Some(id) => {
                let Some(g) = self.store.grant(id, now).await? else {
                    return Ok(None);
                };
                let Ok(body) = serde_json::from_str::<GrantBody>(&g.body) else {
                    return Ok(None);
                };
                if g.client_id != claims.client_id || body.sub != claims.sub {
                    return Ok(None);
                }
                match self.grant_principal(&g, &body).await? {
                    Some(p) => p,
                    None => return Ok(None),
                }
            }
            None => {
                let Some(c) = self.store.oauth_client(&claims.client_id).await? else {
                    return Ok(None);
                };
                if claims.sub != client_subject(&c.client.client_id) {
                    return Ok(None);
                }
                match self.client_principal(&c.client) {
                    Ok(p) => p,
                    Err(_) => return Ok(None),
                }
            }
        };
        Ok(Some(TokenPrincipal { claims, principal }))
    }

    /// The claims of one of our access tokens, its signature checked once: later uses are
    /// answered from [`Engine::access_tokens`] until its `exp` (the engine's clock), while the
    /// key that signed it is still published. Only the signature and claims are cached: the
    /// revocation list, the grant, the client and the account are read per use by
    /// [`Engine::access_token`] as before, so every revocation is in force at once here and on
    /// every daemon sharing the store, exactly as without the cache.
    async fn verified_access(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<AccessClaims>, crate::oauth::KeyError> {
        if !crate::oauth::jwt::looks_like_jwt(token) {
            return Ok(None);
        }
        let digest = self.access_tokens.digest(token);
        if let Some(hit) = self.access_tokens.get(&digest, now) {
            // A rotation that removed the signing key ends its tokens, cached or not.
            if self.oauth.keys.publishes(&hit.kid, now).await? {
                return Ok(Some(hit.claims.clone()));
            }
            self.access_tokens.invalidate(&digest);
            return Ok(None);
        }
        let Some((kid, claims)) = self.oauth.verify_access_signed(token, now).await? else {
            return Ok(None);
        };
        let exp = claims.exp;
        self.access_tokens.insert(
            digest,
            Arc::new(VerifiedAccess {
                kid,
                claims: claims.clone(),
            }),
            exp,
        );
        Ok(Some(claims))
    }

    /// [`Engine::access_token`] as a bearer: `None` unless the principal may log in.
    pub(super) async fn access_token_bearer(
        &self,
        token: &str,
    ) -> Result<Option<Bearer>, StoreError> {
        let Some(t) = self.access_token(token).await? else {
            return Ok(None);
        };
        if !t
            .principal
            .permissions
            .contains(Permission::known("authenticate"))
        {
            return Ok(None);
        }
        Ok(Some(Bearer {
            principal: t.principal,
            expires_at: Some(super::clock::rfc3339(t.claims.exp)),
            session: false,
        }))
    }
}
