//! The token endpoint: `client_credentials`, `authorization_code` (PKCE S256 always) and
//! `refresh_token` (rotated on every use; a reused one revokes its whole grant). No implicit,
//! no password grant.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use postern_internal::store::oauth_grants::{GrantRecord, Redeemed};
use postern_internal::store::StoredOAuthClient;
use postern_internal::{new_id, token_hash};
use serde::{Deserialize, Serialize};

use super::params::Params;
use super::{client, unavailable};
use crate::auth::access_token::client_subject;
use crate::auth::{LoginError, Principal};
use crate::authz::Permission;
use crate::http::extract::{ClientIp, LimitedBody};
use crate::http::{AppState, OAuthError, OAuthErrorCode};
use crate::oauth::{
    rules, AccessClaims, GrantBody, IdClaims, ACCESS_TOKEN_TTL, ID_TOKEN_TTL, REFRESH_TTL,
};

/// What an authorization code stands for (the store's `oauth_codes.body`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeBody {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub account: String,
    pub grant: GrantBody,
}

pub async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, OAuthError> {
    let p = Params::parse(&body)?;
    let grant_type = p.require("grant_type")?;
    if !matches!(
        grant_type,
        "client_credentials" | "authorization_code" | "refresh_token"
    ) {
        state
            .engine
            .count_refusal("oauth", "unsupported_grant_type");
        return Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            "supported: authorization_code, refresh_token, client_credentials",
        ));
    }
    let client = client::authenticate(&state, &headers, &p, ip, true).await?;
    if !client.client.allows_grant(grant_type) {
        state.engine.count_refusal("oauth", "unauthorized_client");
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            format!("this client may not use {grant_type}"),
        ));
    }
    let (answer, kind) = match grant_type {
        "client_credentials" => (
            client_credentials(&state, &client, &p).await?,
            "client_credentials",
        ),
        "authorization_code" => (
            authorization_code(&state, &client, &p).await?,
            "authorization_code",
        ),
        _ => (refresh(&state, &client, &p).await?, "refresh_token"),
    };
    state.engine.count_oauth_token(kind);
    Ok(no_store(Json(answer).into_response()))
}

pub fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

fn invalid_scope(what: impl Into<String>) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidScope, what)
}

/// The requested scope, checked against the server's and the client's.
pub fn allowed_scope(
    client: &StoredOAuthClient,
    requested: &str,
) -> Result<Vec<String>, OAuthError> {
    let scopes =
        rules::parse_scope(requested).map_err(|s| invalid_scope(format!("unknown scope {s:?}")))?;
    let allowed = &client.client.scopes;
    if let Some(s) = scopes
        .iter()
        .find(|s| !allowed.is_empty() && !allowed.contains(s))
    {
        return Err(invalid_scope(format!(
            "scope {s:?} is not allowed for this client"
        )));
    }
    Ok(scopes)
}

async fn client_credentials(
    state: &AppState,
    client: &StoredOAuthClient,
    p: &Params,
) -> Result<serde_json::Value, OAuthError> {
    if client.secret.is_none() {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "client_credentials needs a confidential client",
        ));
    }
    let scope = allowed_scope(client, p.get("scope").unwrap_or_default())?;
    if scope.iter().any(|s| s == "openid" || s == "offline_access") {
        return Err(invalid_scope(
            "openid and offline_access need a person: use authorization_code",
        ));
    }
    state
        .engine
        .client_principal(&client.client)
        .map_err(login_error)?;
    let now = state.engine.clock().unix();
    let claims = AccessClaims {
        iss: state.engine.oauth().issuer(),
        sub: client_subject(&client.client.client_id),
        aud: state.engine.oauth().issuer(),
        client_id: client.client.client_id.clone(),
        scope: scope.join(" "),
        exp: now + ACCESS_TOKEN_TTL,
        iat: now,
        jti: new_id(),
        grant: None,
    };
    let token = sign(state, crate::oauth::jwt::ACCESS_TYP, &claims, now).await?;
    Ok(serde_json::json!({
        "access_token": token, "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL, "scope": claims.scope,
    }))
}

async fn sign<T: Serialize>(
    state: &AppState,
    typ: &str,
    claims: &T,
    now: i64,
) -> Result<String, OAuthError> {
    state
        .engine
        .oauth()
        .sign(typ, claims, now)
        .await
        .map_err(|e| unavailable(&e))
}

fn login_error(e: LoginError) -> OAuthError {
    match e {
        LoginError::Unavailable => OAuthError::unavailable(),
        LoginError::Misconfigured => OAuthError::new(
            OAuthErrorCode::ServerError,
            "the principal's configuration is invalid; see the server log",
        ),
        _ => OAuthError::invalid_grant("the principal may not log in"),
    }
}

/// A random opaque secret (codes, refresh tokens): 256 bits, URL-safe.
pub fn random_token(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

async fn authorization_code(
    state: &AppState,
    client: &StoredOAuthClient,
    p: &Params,
) -> Result<serde_json::Value, OAuthError> {
    let code = p.require("code")?;
    let redirect_uri = p.require("redirect_uri")?;
    let verifier = p.get("code_verifier");
    let store = state.engine.oauth_store();
    let now = state.engine.clock().unix();
    let hash = token_hash(code);
    // Spent at once, whoever presents it: a code is single use (RFC 6749 §4.1.2).
    let body = match store
        .redeem_code(&hash, now)
        .await
        .map_err(|e| unavailable(&e))?
    {
        Redeemed::Fresh(body) => body,
        Redeemed::Replayed(grant) => {
            if let Some(g) = grant {
                store
                    .revoke_grant(&g, now)
                    .await
                    .map_err(|e| unavailable(&e))?;
                tracing::warn!(grant = %g, "authorization code replayed: its grant is revoked");
            }
            state.engine.count_refusal("oauth", "code_replayed");
            return Err(OAuthError::invalid_grant("invalid authorization code"));
        }
        Redeemed::Unknown => return Err(OAuthError::invalid_grant("invalid authorization code")),
    };
    let code: CodeBody = serde_json::from_str(&body).map_err(|e| unavailable(&e))?;
    if code.client_id != client.client.client_id {
        return Err(OAuthError::invalid_grant("invalid authorization code"));
    }
    if code.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    match (&code.code_challenge, verifier) {
        (Some(challenge), Some(v))
            if rules::valid_verifier(v) && rules::pkce_matches(v, challenge) => {}
        (Some(_), _) => return Err(OAuthError::invalid_grant("PKCE verification failed")),
        // RFC 9700 §4.8: a verifier for a code that had no challenge is a downgrade attempt.
        (None, _) => return Err(OAuthError::invalid_grant("code issued without PKCE")),
    }
    let grant = GrantRecord {
        id: new_id(),
        client_id: client.client.client_id.clone(),
        account: code.account.clone(),
        created_at: now,
        expires_at: now + REFRESH_TTL,
        body: serde_json::to_string(&code.grant).map_err(|e| unavailable(&e))?,
    };
    store
        .insert_grant(&grant)
        .await
        .map_err(|e| unavailable(&e))?;
    store
        .set_code_grant(&hash, &grant.id)
        .await
        .map_err(|e| unavailable(&e))?;
    issue_for_grant(
        state,
        client,
        &grant,
        &code.grant,
        code.grant.scope.clone(),
        code.nonce,
        now,
    )
    .await
}

async fn person(
    state: &AppState,
    grant: &GrantRecord,
    body: &GrantBody,
) -> Result<Principal, OAuthError> {
    let p = state
        .engine
        .grant_principal(grant, body)
        .await
        .map_err(|e| unavailable(&e))?
        .ok_or_else(|| OAuthError::invalid_grant("the account is gone or may no longer log in"))?;
    if !p.permissions.contains(Permission::known("authenticate")) {
        return Err(OAuthError::invalid_grant(
            "the account may no longer log in",
        ));
    }
    Ok(p)
}

/// Access token, rotated refresh token and (for `openid`) ID token of a person's grant.
async fn issue_for_grant(
    state: &AppState,
    client: &StoredOAuthClient,
    grant: &GrantRecord,
    body: &GrantBody,
    scope: String,
    nonce: Option<String>,
    now: i64,
) -> Result<serde_json::Value, OAuthError> {
    let principal = person(state, grant, body).await?;
    let issuer = state.engine.oauth().issuer();
    let claims = AccessClaims {
        iss: issuer.clone(),
        sub: body.sub.clone(),
        aud: issuer.clone(),
        client_id: client.client.client_id.clone(),
        scope: scope.clone(),
        exp: now + ACCESS_TOKEN_TTL,
        iat: now,
        jti: new_id(),
        grant: Some(grant.id.clone()),
    };
    let access = sign(state, crate::oauth::jwt::ACCESS_TYP, &claims, now).await?;
    let mut answer = serde_json::json!({
        "access_token": access, "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL, "scope": scope,
    });
    if client.client.allows_grant("refresh_token") {
        let refresh = random_token("prt_");
        state
            .engine
            .oauth_store()
            .insert_refresh_token(&token_hash(&refresh), &grant.id, grant.expires_at)
            .await
            .map_err(|e| unavailable(&e))?;
        answer["refresh_token"] = refresh.into();
    }
    let scopes: Vec<&str> = scope.split(' ').collect();
    if scopes.contains(&"openid") {
        let id = IdClaims {
            iss: issuer,
            sub: body.sub.clone(),
            aud: client.client.client_id.clone(),
            azp: client.client.client_id.clone(),
            exp: now + ID_TOKEN_TTL,
            iat: now,
            auth_time: body.auth_time,
            nonce,
            preferred_username: scopes.contains(&"profile").then(|| principal.name.clone()),
            email: scopes
                .contains(&"email")
                .then(|| principal.emails.first().cloned())
                .flatten(),
        };
        answer["id_token"] = sign(state, "JWT", &id, now).await?.into();
    }
    Ok(answer)
}

async fn refresh(
    state: &AppState,
    client: &StoredOAuthClient,
    p: &Params,
) -> Result<serde_json::Value, OAuthError> {
    let token = p.require("refresh_token")?;
    let store = state.engine.oauth_store();
    let now = state.engine.clock().unix();
    let hash = token_hash(token);
    let invalid = || OAuthError::invalid_grant("invalid refresh token");
    // Whose token it is, before anything is written: another client's token changes nothing.
    let Some((grant_id, _)) = store
        .refresh_token(&hash)
        .await
        .map_err(|e| unavailable(&e))?
    else {
        return Err(invalid());
    };
    let Some(grant) = store
        .grant(&grant_id, now)
        .await
        .map_err(|e| unavailable(&e))?
    else {
        return Err(invalid());
    };
    if grant.client_id != client.client.client_id {
        return Err(invalid());
    }
    match store
        .redeem_refresh_token(&hash, now)
        .await
        .map_err(|e| unavailable(&e))?
    {
        Redeemed::Fresh(_) => {}
        Redeemed::Replayed(_) => {
            // RFC 9700 §4.14.2: a rotated refresh token used again means one of its holders is
            // not the client; the whole grant ends.
            store
                .revoke_grant(&grant.id, now)
                .await
                .map_err(|e| unavailable(&e))?;
            tracing::warn!(grant = %grant.id, client = %grant.client_id, "refresh token reused: grant revoked");
            state.engine.count_refusal("oauth", "refresh_reused");
            return Err(invalid());
        }
        Redeemed::Unknown => return Err(invalid()),
    }
    let body: GrantBody = serde_json::from_str(&grant.body).map_err(|e| unavailable(&e))?;
    let scope = match p.get("scope") {
        None => body.scope.clone(),
        Some(s) => {
            let granted: Vec<&str> = body.scope.split(' ').collect();
            let asked =
                rules::parse_scope(s).map_err(|s| invalid_scope(format!("unknown scope {s:?}")))?;
            if let Some(extra) = asked.iter().find(|a| !granted.contains(&a.as_str())) {
                return Err(invalid_scope(format!("scope {extra:?} was not granted")));
            }
            asked.join(" ")
        }
    };
    issue_for_grant(state, client, &grant, &body, scope, None, now).await
}
