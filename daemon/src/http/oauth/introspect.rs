//! Introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Any confidential client may introspect (a resource server such as Dovecot authenticates as
//! its own client); the answer adds Postern's `roles` and `permissions` as of now. Anything
//! not active is `{"active": false}` and nothing else. A client revokes only its own tokens;
//! revoking a refresh token ends its grant, and with it every access token of the grant.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use postern_internal::token_hash;

use super::params::Params;
use super::token::no_store;
use super::{client, unavailable};
use crate::auth::Principal;
use crate::authz::Permission;
use crate::http::extract::{ClientIp, LimitedBody};
use crate::http::{AppState, OAuthError};
use crate::oauth::GrantBody;

fn inactive() -> Response {
    no_store(Json(serde_json::json!({"active": false})).into_response())
}

fn principal_fields(out: &mut serde_json::Value, p: &Principal) {
    out["username"] = p.name.clone().into();
    out["roles"] = p.roles.clone().into();
    out["groups"] = p.groups.clone().into();
    out["permissions"] = p
        .permissions
        .sorted_names()
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
        .into();
}

pub async fn introspect(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, OAuthError> {
    let p = Params::parse(&body)?;
    client::authenticate(&state, &headers, &p, ip, false).await?;
    let token = p.require("token")?;
    if let Some(t) = state
        .engine
        .access_token(token)
        .await
        .map_err(|e| unavailable(&e))?
    {
        let person = t.claims.grant.is_some();
        if person
            && !t
                .principal
                .permissions
                .contains(Permission::known("authenticate"))
        {
            return Ok(inactive());
        }
        let c = &t.claims;
        let mut out = serde_json::json!({
            "active": true, "sub": c.sub, "client_id": c.client_id, "scope": c.scope,
            "exp": c.exp, "iat": c.iat, "iss": c.iss, "aud": c.aud, "jti": c.jti,
            "token_type": "Bearer",
        });
        principal_fields(&mut out, &t.principal);
        return Ok(no_store(Json(out).into_response()));
    }
    let store = state.engine.oauth_store();
    let now = state.engine.clock().unix();
    let Some((grant_id, exp)) = store
        .live_refresh_token(&token_hash(token), now)
        .await
        .map_err(|e| unavailable(&e))?
    else {
        return Ok(inactive());
    };
    let Some(grant) = store
        .grant(&grant_id, now)
        .await
        .map_err(|e| unavailable(&e))?
    else {
        return Ok(inactive());
    };
    let Ok(body) = serde_json::from_str::<GrantBody>(&grant.body) else {
        return Ok(inactive());
    };
    let Some(principal) = state
        .engine
        .grant_principal(&grant, &body)
        .await
        .map_err(|e| unavailable(&e))?
    else {
        return Ok(inactive());
    };
    let mut out = serde_json::json!({
        "active": true, "sub": body.sub, "client_id": grant.client_id, "scope": body.scope,
        "exp": exp, "iat": grant.created_at, "iss": state.engine.oauth().issuer(),
        "token_type": "refresh_token",
    });
    principal_fields(&mut out, &principal);
    Ok(no_store(Json(out).into_response()))
}

pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, OAuthError> {
    let p = Params::parse(&body)?;
    let client = client::authenticate(&state, &headers, &p, ip, true).await?;
    let token = p.require("token")?;
    let client_id = &client.client.client_id;
    let store = state.engine.oauth_store();
    let now = state.engine.clock().unix();
    let not_yours = || OAuthError::invalid_request("the token was not issued to this client");
    // token_type_hint is only a hint: both kinds are looked for.
    if let Some(c) = state
        .engine
        .oauth()
        .verify_access(token, now)
        .await
        .map_err(|e| unavailable(&e))?
    {
        if &c.client_id != client_id {
            return Err(not_yours());
        }
        store
            .revoke_jti(&c.jti, c.exp)
            .await
            .map_err(|e| unavailable(&e))?;
        tracing::info!(client = %client_id, jti = %c.jti, "access token revoked");
    } else if let Some((grant_id, _)) = store
        .refresh_token(&token_hash(token))
        .await
        .map_err(|e| unavailable(&e))?
    {
        // A revoked or expired grant is still looked at, to tell its client apart.
        match store
            .grant(&grant_id, now)
            .await
            .map_err(|e| unavailable(&e))?
        {
            Some(g) if &g.client_id != client_id => return Err(not_yours()),
            Some(g) => {
                store
                    .revoke_grant(&g.id, now)
                    .await
                    .map_err(|e| unavailable(&e))?;
                tracing::info!(client = %client_id, grant = %g.id, "refresh token revoked with its grant");
            }
            None => {}
        }
    }
    Ok(no_store(StatusCode::OK.into_response()))
}
