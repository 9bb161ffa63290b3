//! `/api/v1/principals`: accounts and groups, their permissions, API keys and app passwords.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use postern_internal::input::AccountInput;
use postern_internal::model::{AccountType, CredentialType};
use postern_internal::view::AccountView;
use serde::{Deserialize, Serialize};

use super::{admin, if_match, page_params, tagged, Body, Caller, Failure, PageParams};
use crate::admin::{
    CredentialCreated, CredentialRequest, CredentialView, Explanation, JmapPrincipal, Listed,
    PrincipalQuery, Window,
};
use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/principals", get(list).post(create))
        .route(
            "/api/v1/principals/{name}",
            get(read).patch(patch).delete(remove),
        )
        .route("/api/v1/principals/{name}/permissions", get(permissions))
        .route(
            "/api/v1/principals/{name}/api-keys",
            get(list_api_keys).post(create_api_key),
        )
        .route(
            "/api/v1/principals/{name}/api-keys/{id}",
            delete(delete_api_key),
        )
        .route(
            "/api/v1/principals/{name}/app-passwords",
            get(list_app_passwords).post(create_app_password),
        )
        .route(
            "/api/v1/principals/{name}/app-passwords/{id}",
            delete(delete_app_password),
        )
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// Postern's own principal objects.
    Postern,
    /// JMAP Sharing (RFC 9670) `Principal` objects.
    Jmap,
}

/// `GET /api/v1/principals` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `individual` or `group`; both (those the caller may list) when absent.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<String>, pattern = "^(individual|group)$")]
    pub kind: Option<AccountType>,
    pub tenant: Option<String>,
    /// A name prefix.
    pub q: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    #[param(value_type = Option<String>, pattern = "^(postern|jmap)$")]
    pub view: Option<View>,
}

/// A page of principals (`view=jmap`: of JMAP `Principal` objects).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PrincipalPage {
    Postern(Listed<AccountView>),
    Jmap(Listed<JmapPrincipal>),
}

#[utoipa::path(get, path = "/api/v1/principals", tag = "principals", params(ListParams),
    responses((status = 200, description = "A page of principals", body = PrincipalPage)))]
pub async fn list(
    State(state): State<AppState>,
    Caller(actor): Caller,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(p) = q?;
    let query = PrincipalQuery {
        kind: p.kind,
        tenant: p.tenant,
        window: Window {
            limit: p.limit,
            cursor: p.cursor,
            prefix: p.q,
        },
    };
    let a = admin(&state);
    Ok(Json(match p.view {
        Some(View::Jmap) => PrincipalPage::Jmap(a.list_jmap(&actor, &query).await?),
        _ => PrincipalPage::Postern(a.list_principals(&actor, &query).await?),
    })
    .into_response())
}

#[utoipa::path(post, path = "/api/v1/principals", tag = "principals",
    request_body = AccountInput,
    responses((status = 201, description = "Created", body = AccountView)))]
pub async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Body(input): Body<AccountInput>,
) -> Result<Response, Failure> {
    let v = admin(&state).create_principal(&actor, input).await?;
    Ok(tagged(StatusCode::CREATED, v.version, &v))
}

#[utoipa::path(get, path = "/api/v1/principals/{name}", tag = "principals",
    params(("name" = String, Path)),
    responses((status = 200, description = "The principal", body = AccountView)))]
pub async fn read(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
) -> Result<Response, Failure> {
    let v = admin(&state).principal(&actor, &name).await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}

/// A JSON merge patch (RFC 7396) of a principal: its fields as written (`password` sets a new
/// one); `null` removes a field.
#[utoipa::path(patch, path = "/api/v1/principals/{name}", tag = "principals",
    params(("name" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = AccountInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The principal as it now is", body = AccountView)))]
pub async fn patch(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    Body(body): Body<serde_json::Value>,
) -> Result<Response, Failure> {
    let v = admin(&state)
        .patch_principal(&actor, &name, &body, if_match(&headers))
        .await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}

#[utoipa::path(delete, path = "/api/v1/principals/{name}", tag = "principals",
    params(("name" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deleted, with its credentials and sessions")))]
pub async fn remove(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    admin(&state)
        .delete_principal(&actor, &name, if_match(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PermissionParams {
    /// A permission name: answer why it is granted or denied.
    pub explain: Option<String>,
}

/// The effective permissions, or one permission's explanation.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PermissionsAnswer {
    Effective { permissions: Vec<String> },
    Explained(Explanation),
}

#[utoipa::path(get, path = "/api/v1/principals/{name}/permissions", tag = "principals",
    params(("name" = String, Path), PermissionParams),
    responses((status = 200, description = "Sorted effective permissions, or an explanation",
        body = PermissionsAnswer)))]
pub async fn permissions(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    q: Result<Query<PermissionParams>, QueryRejection>,
) -> Result<Json<PermissionsAnswer>, Failure> {
    let Query(p) = q?;
    let a = admin(&state);
    Ok(Json(match p.explain {
        Some(perm) => PermissionsAnswer::Explained(a.explain(&actor, &name, &perm).await?),
        None => PermissionsAnswer::Effective {
            permissions: a.permissions(&actor, &name).await?,
        },
    }))
}

async fn list_credentials(
    state: &AppState,
    actor: &crate::admin::Actor,
    kind: CredentialType,
    name: &str,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Listed<CredentialView>>, Failure> {
    let window = page_params(q)?;
    Ok(Json(
        admin(state)
            .list_credentials(actor, kind, name, &window)
            .await?,
    ))
}

async fn create_credential(
    state: &AppState,
    actor: &crate::admin::Actor,
    kind: CredentialType,
    name: &str,
    request: CredentialRequest,
) -> Result<Response, Failure> {
    let made = admin(state)
        .create_credential(actor, kind, name, request)
        .await?;
    Ok(tagged(StatusCode::CREATED, made.credential.version, &made))
}

#[utoipa::path(get, path = "/api/v1/principals/{name}/api-keys", tag = "credentials",
    params(("name" = String, Path), PageParams),
    responses((status = 200, description = "API keys (never their secrets)",
        body = Listed<CredentialView>)))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Listed<CredentialView>>, Failure> {
    list_credentials(&state, &actor, CredentialType::ApiKey, &name, q).await
}

#[utoipa::path(post, path = "/api/v1/principals/{name}/api-keys", tag = "credentials",
    params(("name" = String, Path)), request_body = CredentialRequest,
    responses((status = 201, description = "The key, with its secret shown this once",
        body = CredentialCreated)))]
pub async fn create_api_key(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    Body(request): Body<CredentialRequest>,
) -> Result<Response, Failure> {
    create_credential(&state, &actor, CredentialType::ApiKey, &name, request).await
}

#[utoipa::path(delete, path = "/api/v1/principals/{name}/api-keys/{id}", tag = "credentials",
    params(("name" = String, Path), ("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Revoked")))]
pub async fn delete_api_key(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    admin(&state)
        .delete_credential(
            &actor,
            CredentialType::ApiKey,
            &name,
            &id,
            if_match(&headers),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/principals/{name}/app-passwords", tag = "credentials",
    params(("name" = String, Path), PageParams),
    responses((status = 200, description = "App passwords (never their secrets)",
        body = Listed<CredentialView>)))]
pub async fn list_app_passwords(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Listed<CredentialView>>, Failure> {
    list_credentials(&state, &actor, CredentialType::AppPassword, &name, q).await
}

#[utoipa::path(post, path = "/api/v1/principals/{name}/app-passwords", tag = "credentials",
    params(("name" = String, Path)), request_body = CredentialRequest,
    responses((status = 201, description = "The app password, shown this once",
        body = CredentialCreated)))]
pub async fn create_app_password(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(name): Path<String>,
    Body(request): Body<CredentialRequest>,
) -> Result<Response, Failure> {
    create_credential(&state, &actor, CredentialType::AppPassword, &name, request).await
}

#[utoipa::path(delete, path = "/api/v1/principals/{name}/app-passwords/{id}",
    tag = "credentials",
    params(("name" = String, Path), ("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Revoked")))]
pub async fn delete_app_password(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    admin(&state)
        .delete_credential(
            &actor,
            CredentialType::AppPassword,
            &name,
            &id,
            if_match(&headers),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
