//! `/auth/app-passwords`: a principal's own app passwords, by session cookie or bearer.
//!
//! * `POST /auth/app-passwords` `{"description", "expiresAt"?, "permissions"?}` → 201
//!   `{"id", "secret", "description", "expiresAt", "permissions"}`; the only time the
//!   secret is shown.
//! * `GET /auth/app-passwords` → `{"items": [...]}` without secrets.
//! * `DELETE /auth/app-passwords/{id}` → 204, or 404 for an id that is not the caller's.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use postern_internal::model::{Credential, CredentialScope};
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, JsonBody};
use super::{ApiError, AppState};
use crate::auth::app_passwords::{AppPasswordError, NewAppPassword};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/app-passwords", get(list).post(create))
        .route("/auth/app-passwords/{id}", delete(revoke))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateBody {
    description: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    permissions: Option<CredentialScope>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct View {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    description: String,
    expires_at: Option<String>,
    permissions: CredentialScope,
}

impl View {
    fn of(c: Credential, secret: Option<String>) -> View {
        View {
            id: c.id,
            secret,
            description: c.description,
            expires_at: c.expires_at,
            permissions: c.permissions,
        }
    }
}

fn error(e: AppPasswordError) -> ApiError {
    match e {
        AppPasswordError::Invalid(m) => ApiError::bad_request(m),
        AppPasswordError::NotFound => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such app password")
        }
        AppPasswordError::Store(m) => {
            tracing::warn!(error = %m, "app password store operation failed");
            ApiError::unavailable()
        }
    }
}

async fn create(
    State(state): State<AppState>,
    auth: Authenticated,
    JsonBody(body): JsonBody<CreateBody>,
) -> Result<Response, ApiError> {
    let created = state
        .engine
        .create_app_password(
            &auth.session,
            NewAppPassword {
                description: body.description,
                expires_at: body.expires_at,
                permissions: body.permissions,
            },
        )
        .await
        .map_err(error)?;
    tracing::info!(account = %created.credential.account, id = %created.credential.id, "app password created");
    let secret = created.secret.to_string();
    Ok((
        StatusCode::CREATED,
        Json(View::of(created.credential, Some(secret))),
    )
        .into_response())
}

async fn list(State(state): State<AppState>, auth: Authenticated) -> Result<Response, ApiError> {
    let items: Vec<View> = state
        .engine
        .app_passwords(&auth.session.principal.name)
        .await
        .map_err(error)?
        .into_iter()
        .map(|c| View::of(c, None))
        .collect();
    Ok(Json(serde_json::json!({ "items": items })).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    state
        .engine
        .revoke_app_password(&auth.session.principal.name, &id)
        .await
        .map_err(error)?;
    tracing::info!(account = %auth.session.principal.name, %id, "app password revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
