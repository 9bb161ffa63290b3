//! `/api/v1/roles`, `/api/v1/tenants`, `/api/v1/oauth-clients`, `/api/v1/settings/authentication`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use postern_internal::input::OAuthClientInput;
use postern_internal::model::{AuthDefaults, Role, Tenant};
use postern_internal::view::OAuthClientView;

use super::{admin, if_match, page_params, tagged, Body, Caller, Failure, PageParams};
use crate::admin::{Listed, WithVersion};
use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/roles", get(list_roles).post(create_role))
        .route(
            "/api/v1/roles/{id}",
            get(read_role).patch(patch_role).delete(delete_role),
        )
        .route("/api/v1/tenants", get(list_tenants).post(create_tenant))
        .route(
            "/api/v1/tenants/{id}",
            get(read_tenant).patch(patch_tenant).delete(delete_tenant),
        )
        .route(
            "/api/v1/oauth-clients",
            get(list_clients).post(create_client),
        )
        .route(
            "/api/v1/oauth-clients/{clientId}",
            get(read_client).patch(patch_client).delete(delete_client),
        )
        .route(
            "/api/v1/settings/authentication",
            get(read_defaults).put(put_defaults),
        )
}

// Roles.

#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", params(PageParams),
    responses((status = 200, description = "A page of roles", body = Listed<WithVersion<Role>>)))]
pub async fn list_roles(
    State(state): State<AppState>,
    Caller(actor): Caller,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Listed<WithVersion<Role>>>, Failure> {
    let w = page_params(q)?;
    Ok(Json(admin(&state).list_roles(&actor, &w).await?))
}

#[utoipa::path(post, path = "/api/v1/roles", tag = "roles", request_body = Role,
    responses((status = 201, description = "Created", body = WithVersion<Role>)))]
pub async fn create_role(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Body(role): Body<Role>,
) -> Result<Response, Failure> {
    let v = admin(&state).create_role(&actor, role).await?;
    Ok(tagged(StatusCode::CREATED, v.version, &v))
}

#[utoipa::path(get, path = "/api/v1/roles/{id}", tag = "roles", params(("id" = String, Path)),
    responses((status = 200, description = "The role", body = WithVersion<Role>)))]
pub async fn read_role(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let v = admin(&state).role(&actor, &id).await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}

#[utoipa::path(patch, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Role, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The role as it now is", body = WithVersion<Role>)))]
pub async fn patch_role(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<serde_json::Value>,
) -> Result<Response, Failure> {
    let v = admin(&state)
        .patch_role(&actor, &id, &body, if_match(&headers))
        .await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}

#[utoipa::path(delete, path = "/api/v1/roles/{id}", tag = "roles",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_role(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    admin(&state)
        .delete_role(&actor, &id, if_match(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// Tenants.

#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(PageParams),
    responses((status = 200, description = "A page of tenants", body = Listed<WithVersion<Tenant>>)))]
pub async fn list_tenants(
    State(state): State<AppState>,
    Caller(actor): Caller,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Listed<WithVersion<Tenant>>>, Failure> {
    let w = page_params(q)?;
    Ok(Json(admin(&state).list_tenants(&actor, &w).await?))
}

#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = Tenant,
    responses((status = 201, description = "Created", body = WithVersion<Tenant>)))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Body(tenant): Body<Tenant>,
) -> Result<Response, Failure> {
    let v = admin(&state).create_tenant(&actor, tenant).await?;
    Ok(tagged(StatusCode::CREATED, v.version, &v))
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants", params(("id" = String, Path)),
    responses((status = 200, description = "The tenant", body = WithVersion<Tenant>)))]
pub async fn read_tenant(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let v = admin(&state).tenant(&actor, &id).await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Tenant, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The tenant as it now is", body = WithVersion<Tenant>)))]
pub async fn patch_tenant(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<serde_json::Value>,
) -> Result<Response, Failure> {
    let v = admin(&state)
        .patch_tenant(&actor, &id, &body, if_match(&headers))
        .await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    admin(&state)
        .delete_tenant(&actor, &id, if_match(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// OAuth clients.

#[utoipa::path(get, path = "/api/v1/oauth-clients", tag = "oauth-clients", params(PageParams),
    responses((status = 200, description = "A page of OAuth clients", body = Listed<OAuthClientView>)))]
pub async fn list_clients(
    State(state): State<AppState>,
    Caller(actor): Caller,
    q: Result<Query<PageParams>, QueryRejection>,
) -> Result<Json<Listed<OAuthClientView>>, Failure> {
    let w = page_params(q)?;
    Ok(Json(admin(&state).list_oauth_clients(&actor, &w).await?))
}

#[utoipa::path(post, path = "/api/v1/oauth-clients", tag = "oauth-clients",
    request_body = OAuthClientInput,
    responses((status = 201, description = "Created", body = OAuthClientView)))]
pub async fn create_client(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Body(input): Body<OAuthClientInput>,
) -> Result<Response, Failure> {
    let v = admin(&state).create_oauth_client(&actor, input).await?;
    Ok(tagged(StatusCode::CREATED, v.version, &v))
}

#[utoipa::path(get, path = "/api/v1/oauth-clients/{clientId}", tag = "oauth-clients",
    params(("clientId" = String, Path)),
    responses((status = 200, description = "The client", body = OAuthClientView)))]
pub async fn read_client(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let v = admin(&state).oauth_client(&actor, &id).await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}

#[utoipa::path(patch, path = "/api/v1/oauth-clients/{clientId}", tag = "oauth-clients",
    params(("clientId" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = OAuthClientInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The client as it now is", body = OAuthClientView)))]
pub async fn patch_client(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<serde_json::Value>,
) -> Result<Response, Failure> {
    let v = admin(&state)
        .patch_oauth_client(&actor, &id, &body, if_match(&headers))
        .await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}

#[utoipa::path(delete, path = "/api/v1/oauth-clients/{clientId}", tag = "oauth-clients",
    params(("clientId" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_client(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, Failure> {
    admin(&state)
        .delete_oauth_client(&actor, &id, if_match(&headers))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// The authentication defaults.

#[utoipa::path(get, path = "/api/v1/settings/authentication", tag = "settings",
    responses((status = 200, description = "The defaults (version 0: the built-in ones)",
        body = WithVersion<AuthDefaults>)))]
pub async fn read_defaults(
    State(state): State<AppState>,
    Caller(actor): Caller,
) -> Result<Response, Failure> {
    let v = admin(&state).defaults(&actor).await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}

#[utoipa::path(put, path = "/api/v1/settings/authentication", tag = "settings",
    params(("If-Match" = Option<String>, Header)), request_body = AuthDefaults,
    responses((status = 200, description = "The defaults as they now are",
        body = WithVersion<AuthDefaults>)))]
pub async fn put_defaults(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    Body(defaults): Body<AuthDefaults>,
) -> Result<Response, Failure> {
    let v = admin(&state)
        .put_defaults(&actor, defaults, if_match(&headers))
        .await?;
    Ok(tagged(StatusCode::OK, v.version, &v))
}
