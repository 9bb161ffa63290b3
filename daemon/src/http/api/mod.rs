//! The management API, `/api/v1`: every object of SPEC §4 over HTTP, through the same
//! operations as the CLI ([`crate::admin`]), with the OpenAPI document generated from these
//! handlers' types at `/api/v1/openapi.json` ([`openapi`]).
//!
//! Callers authenticate with `Authorization: Bearer` (a session token or an API key) or the
//! session cookie; a cookie-carried unsafe request must also send `X-Requested-With` (a header
//! a cross-site form cannot set, and a cross-site script cannot without a CORS preflight this
//! server never grants). Objects carry an `ETag` (`"v{version}"`); `If-Match` on `PATCH`,
//! `PUT` and `DELETE` must name the current one (412 otherwise).

mod metrics;
mod objects;
pub mod openapi;
mod principals;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, Carrier};
use super::{ApiError, AppState};
use crate::admin::{Actor, Admin, AdminError, Window};

/// Every `/api/v1` route, each counted in the engine's metrics.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(principals::routes())
        .merge(objects::routes())
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(openapi::document),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            metrics::ApiMetrics::new(state.engine.metrics()),
            metrics::count,
        ))
}

/// The JSON body of every error: `error` a fixed code, `message` for people, `problems` each
/// naming its object and field.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A refusal: the shared HTTP errors, or a management operation's.
#[derive(Debug)]
pub enum Failure {
    Http(ApiError),
    Admin(AdminError),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Http(e)
    }
}

impl From<AdminError> for Failure {
    fn from(e: AdminError) -> Self {
        Failure::Admin(e)
    }
}

impl From<QueryRejection> for Failure {
    fn from(e: QueryRejection) -> Self {
        Failure::Http(ApiError::bad_request(format!("query: {}", e.body_text())))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let e = match self {
            Failure::Http(e) => return e.into_response(),
            Failure::Admin(e) => e,
        };
        let (status, code, problems) = match &e {
            AdminError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", vec![]),
            AdminError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", vec![]),
            AdminError::Stale(_) => (
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                vec![],
            ),
            AdminError::Exists(_) => (StatusCode::CONFLICT, "conflict", vec![]),
            AdminError::Referenced(p) => (StatusCode::CONFLICT, "conflict", p.clone()),
            AdminError::Invalid(p) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid", p.clone()),
            AdminError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request", vec![]),
            AdminError::Unavailable(_) => {
                tracing::warn!(error = %e, "management request: store unavailable");
                return ApiError::unavailable().into_response();
            }
            AdminError::Internal(_) => {
                tracing::error!(error = %e, "management request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error", vec![])
            }
        };
        let body = ErrorBody {
            error: code.into(),
            message: e.to_string(),
            problems,
        };
        (status, Json(body)).into_response()
    }
}

/// The caller of a management request, authenticated, with the CSRF rule applied.
pub struct Caller(pub Actor);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        let unsafe_method = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if auth.credentials.carrier == Carrier::Cookie && unsafe_method {
            let cross_site = parts
                .headers
                .get("sec-fetch-site")
                .is_some_and(|v| v.as_bytes() == b"cross-site");
            if cross_site || !parts.headers.contains_key("x-requested-with") {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "a request carried by the session cookie must send X-Requested-With",
                ));
            }
        }
        Ok(Caller(Actor::from_session(&auth.session)))
    }
}

/// A JSON body as [`crate::http::extract::JsonBody`] reads it (64 KiB, a JSON type), whose
/// refusal names the field at fault: `permissions.mode: unknown variant …`.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            if !super::extract::is_json(ct.to_str().unwrap_or_default()) {
                return Err(ApiError::unsupported_media_type(
                    "expected Content-Type: application/json",
                ));
            }
        }
        let super::extract::LimitedBody(bytes) =
            super::extract::LimitedBody::from_request(req, state).await?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(Body).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || inner.is_syntax() || inner.is_eof() {
                ApiError::bad_request(format!("malformed JSON body: {inner}"))
            } else {
                ApiError::bad_request(format!("{path}: {inner}"))
            }
        })
    }
}

/// The management operations over the engine's store.
fn admin(state: &AppState) -> Admin {
    Admin::new(state.engine.store().clone(), state.engine.hasher().clone())
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// At most this many items (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The `next` of the page before.
    pub cursor: Option<String>,
}

impl PageParams {
    fn window(self) -> Window {
        Window {
            limit: self.limit,
            cursor: self.cursor,
            prefix: None,
        }
    }
}

fn page_params(q: Result<Query<PageParams>, QueryRejection>) -> Result<Window, Failure> {
    Ok(q?.0.window())
}

/// `If-Match`: `None` for none or `*`; a tag that is not one of ours never matches.
fn if_match(headers: &HeaderMap) -> Option<i64> {
    let value = headers
        .get(header::IF_MATCH)?
        .to_str()
        .unwrap_or("-")
        .trim();
    if value == "*" {
        return None;
    }
    let tag = value.split(',').next().unwrap_or_default().trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    Some(
        tag.strip_prefix("\"v")
            .and_then(|t| t.strip_suffix('"'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(-1),
    )
}

/// A JSON answer with the object's `ETag`.
fn tagged<T: Serialize>(status: StatusCode, version: i64, body: &T) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"v{version}\"")) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}
