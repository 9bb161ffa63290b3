//! OpenID Connect userinfo: the person behind an access token, as they are now.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::token::no_store;
use crate::http::AppState;

fn invalid_token() -> Response {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({"error": "invalid_token"})),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    no_store(r)
}

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let Some(token) = token else {
        return invalid_token();
    };
    let t = match state.engine.access_token(token).await {
        Ok(Some(t)) if t.claims.grant.is_some() => t,
        Ok(_) => return invalid_token(),
        Err(e) => {
            tracing::warn!(error = %e, "userinfo could not be served");
            return no_store(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
    };
    let p = &t.principal;
    let mut out = serde_json::json!({
        "sub": t.claims.sub,
        "preferred_username": p.name,
        "groups": p.groups,
        "roles": p.roles,
    });
    if let Some(email) = p.emails.first() {
        out["email"] = email.clone().into();
    }
    no_store(Json(out).into_response())
}
