//! Sessions: issued after a login, stored (as a hash) in the store so that every daemon sharing
//! it accepts them and sees their revocation at once. API keys are accepted where sessions are.

use std::net::IpAddr;

use postern_internal::model::CredentialType;
use postern_internal::store::SessionRecord;
use postern_internal::tokens::generate_token;
use postern_internal::{token_hash, StoreError};
use serde::{Deserialize, Serialize};

use super::clock::rfc3339;
use super::{Engine, Method, Principal};
use crate::authz::Permission;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub tenant: Option<String>,
    pub emails: Vec<String>,
}

/// The session view of SPEC §6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// Absent for API keys: their secret is never echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub token_type: String,
    pub expires_at: Option<String>,
    pub principal: PrincipalView,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub permissions: Vec<String>,
    pub directory: String,
    pub mechanism: String,
}

impl SessionView {
    pub(super) fn of(p: &Principal, expires_at: Option<String>) -> SessionView {
        let mut emails = p.emails.clone();
        emails.sort();
        emails.dedup();
        SessionView {
            token: None,
            token_type: "Bearer".into(),
            expires_at,
            principal: PrincipalView {
                id: p.id.clone(),
                name: p.name.clone(),
                kind: p.kind.as_str().into(),
                tenant: p.tenant.clone(),
                emails,
            },
            roles: p.roles.clone(),
            groups: p.groups.clone(),
            permissions: p
                .permissions
                .sorted_names()
                .into_iter()
                .map(String::from)
                .collect(),
            directory: p.directory.clone(),
            mechanism: p.method.as_str().to_string(),
        }
    }
}

impl Engine {
    /// Issues a session for a principal that just logged in.
    pub async fn issue_session(&self, p: &Principal) -> Result<SessionView, StoreError> {
        let now = self.clock.unix();
        let expires = now + self.session_ttl.as_secs() as i64;
        let view = SessionView::of(p, Some(rfc3339(expires)));
        let token = generate_token();
        let body = serde_json::to_string(&view).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store
            .insert_session(
                &token_hash(&token),
                &SessionRecord {
                    account: p.name.clone(),
                    created_at: now,
                    expires_at: expires,
                    body,
                },
            )
            .await?;
        self.metrics
            .sessions_issued
            .with_label_values(&[p.method.as_str()])
            .inc();
        self.metrics.sessions_active.inc();
        Ok(SessionView {
            token: Some(token),
            ..view
        })
    }

    /// The view for a bearer token: a live session, or a valid API key. `Ok(None)` when it is
    /// neither (unknown, expired, revoked, or used from a disallowed address).
    pub async fn bearer(
        &self,
        token: &str,
        ip: Option<IpAddr>,
    ) -> Result<Option<SessionView>, StoreError> {
        self.keep_current().await;
        // What the answer depends on, read before anything else: a change after this moment
        // keeps the view computed below from being reused.
        let basis = self
            .store
            .cache_epoch()
            .map(|epoch| super::session_views::Basis {
                epoch,
                generation: self.policy().generation,
            });
        let hash =
            (basis.is_some() && !token.is_empty() && token.len() <= 512).then(|| token_hash(token));
        let now = self.clock.unix();
        if let (Some(basis), Some(hash)) = (basis, &hash) {
            if let Some((view, _)) = self.views.get(hash, basis, now) {
                return Ok(Some(SessionView {
                    token: Some(token.to_string()),
                    ..SessionView::clone(&view)
                }));
            }
        }
        let Some(b) = self.bearer_principal(token, ip).await? else {
            // An external provider's token, if a directory of the chain takes those.
            return self.provider_token_view(token, ip).await;
        };
        let view = SessionView {
            // An API key's secret is never echoed.
            token: b.session.then(|| token.to_string()),
            ..SessionView::of(&b.principal, b.expires_at)
        };
        // Sessions only: an API key's answer also depends on the client's address.
        if let (true, Some(basis), Some(hash)) = (b.session, basis, &hash) {
            if let Some(expires) = view
                .expires_at
                .as_deref()
                .and_then(|t| super::clock::parse_rfc3339(t).ok())
            {
                self.views.put(hash, &view, expires, basis);
            }
        }
        Ok(Some(view))
    }

    /// [`Engine::bearer`] rendered as JSON, the answer of `GET /auth/session`: a repeated
    /// session token is answered with the JSON rendered for it before (see
    /// `session_views.rs`), its token put back in front.
    pub async fn bearer_json(
        &self,
        token: &str,
        ip: Option<IpAddr>,
    ) -> Result<Option<String>, StoreError> {
        self.keep_current().await;
        if let (Some(epoch), false) = (self.store.cache_epoch(), token.len() > 512) {
            let basis = super::session_views::Basis {
                epoch,
                generation: self.policy().generation,
            };
            let hash = token_hash(token);
            if let Some((_, json)) = self.views.get(&hash, basis, self.clock.unix()) {
                // The view serializes `token` first, and without it starts `{"tokenType"`.
                if let (Some(rest), Ok(token)) =
                    (json.strip_prefix('{'), serde_json::to_string(token))
                {
                    let mut out = String::with_capacity(json.len() + token.len() + 10);
                    out.push_str("{\"token\":");
                    out.push_str(&token);
                    out.push(',');
                    out.push_str(rest);
                    return Ok(Some(out));
                }
            }
        }
        let Some(view) = self.bearer(token, ip).await? else {
            return Ok(None);
        };
        serde_json::to_string(&view)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The principal a bearer token stands for, as its account is now: a live session's
    /// (`None` when the account is gone or may no longer log in; its current roles, groups and
    /// permissions otherwise, not those it was born with), or a valid API key's, narrowed by
    /// its scope. One read of the token, one of the account.
    pub(super) async fn bearer_principal(
        &self,
        token: &str,
        ip: Option<IpAddr>,
    ) -> Result<Option<Bearer>, StoreError> {
        if crate::oauth::jwt::looks_like_jwt(token) {
            return self.access_token_bearer(token).await;
        }
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        let hash = token_hash(token);
        let now = self.clock.unix();
        if let Some(record) = self.store.session(&hash, now).await? {
            let view: SessionView = serde_json::from_str(&record.body)
                .map_err(|e| StoreError::Corrupt(format!("session body: {e}")))?;
            let Some(stored) = self.store.account_shared(&record.account).await? else {
                return Ok(None);
            };
            // A view this build did not write is refused rather than guessed at.
            let Some(method) = Method::parse(&view.mechanism) else {
                return Ok(None);
            };
            // An external principal's groups are those its directory reported at the login.
            let extra = if super::login::is_internal(&view.directory) {
                &[][..]
            } else {
                &view.groups[..]
            };
            let Ok(mut p) = self.evaluate(&stored, extra, &view.directory, method, None) else {
                return Ok(None);
            };
            p.emails = view.principal.emails;
            return Ok(may_log_in(p, view.expires_at, true));
        }
        let Some(cred) = self
            .store
            .credential_by_hash(CredentialType::ApiKey, &hash)
            .await?
        else {
            return Ok(None);
        };
        if self.check_credential(&cred, ip).is_err() {
            return Ok(None);
        }
        let Some(stored) = self.store.account_shared(&cred.account).await? else {
            return Ok(None);
        };
        let directory = stored.origin.as_str();
        Ok(self
            .evaluate(&stored, &[], directory, Method::ApiKey, Some(&cred))
            .ok()
            .and_then(|p| may_log_in(p, cred.expires_at.clone(), false)))
    }

    /// Revokes a session; `false` when the token was not a live session.
    pub async fn revoke(&self, token: &str) -> Result<bool, StoreError> {
        let revoked = self
            .store
            .revoke_session(&token_hash(token), self.clock.unix())
            .await?;
        if revoked {
            self.metrics.sessions_active.dec();
        }
        Ok(revoked)
    }
}

/// What a bearer token stands for now.
pub(super) struct Bearer {
    pub principal: Principal,
    pub expires_at: Option<String>,
    /// A session (its token may be echoed), not an API key.
    pub session: bool,
}

/// Nobody holds a token to an account that lost `authenticate`.
fn may_log_in(principal: Principal, expires_at: Option<String>, session: bool) -> Option<Bearer> {
    principal
        .permissions
        .contains(Permission::known("authenticate"))
        .then_some(Bearer {
            principal,
            expires_at,
            session,
        })
}
