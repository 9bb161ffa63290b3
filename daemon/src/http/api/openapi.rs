//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and
//! the types they read and answer; [`Errors`] adds to every operation the error answers every
//! management request can get, and the bearer security scheme.

use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::{objects, principals, ErrorBody};

#[derive(OpenApi)]
#[openapi(
    info(title = "Postern management API", version = "1",
        description = "Every object of the directory model. Authenticate with `Authorization: Bearer` (a session token or an API key)."),
    paths(
        principals::list, principals::create, principals::read, principals::patch,
        principals::remove, principals::permissions,
        principals::list_api_keys, principals::create_api_key, principals::delete_api_key,
        principals::list_app_passwords, principals::create_app_password,
        principals::delete_app_password,
        objects::list_roles, objects::create_role, objects::read_role, objects::patch_role,
        objects::delete_role,
        objects::list_tenants, objects::create_tenant, objects::read_tenant,
        objects::patch_tenant, objects::delete_tenant,
        objects::list_clients, objects::create_client, objects::read_client,
        objects::patch_client, objects::delete_client,
        objects::read_defaults, objects::put_defaults,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Errors),
)]
pub struct ApiDoc;

/// The error answers and the security requirement of every operation.
struct Errors;

const ERRORS: [(&str, &str); 11] = [
    (
        "400",
        "Malformed request: bad JSON, a wrong type, an unknown field or parameter",
    ),
    ("401", "No, or an unknown, expired or revoked, bearer token"),
    (
        "403",
        "A permission the caller lacks (named), or a grant beyond what they hold",
    ),
    ("404", "No such object, or one outside the caller's tenant"),
    (
        "409",
        "Already exists, or still named by other objects (listed)",
    ),
    ("412", "If-Match names a version that is no longer current"),
    ("413", "Body over 64 KiB"),
    ("415", "Body not JSON"),
    ("422", "The object is invalid; each problem names its field"),
    ("500", "The store holds data this server cannot read"),
    ("503", "The store cannot be reached; try again"),
];

impl Modify for Errors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let body = || {
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ErrorBody::name(),
                ))))
                .build()
        };
        let security = SecurityRequirement::new("bearer", Vec::<String>::new());
        for item in doc.paths.paths.values_mut() {
            let ops: [&mut Option<Operation>; 5] = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                for (code, text) in ERRORS {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| {
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(text)
                                    .content("application/json", body())
                                    .build(),
                            )
                        });
                }
                op.security = Some(vec![security.clone()]);
            }
        }
        let _ = ErrorBody::schema();
    }
}

/// `GET /api/v1/openapi.json`: served without authentication (it holds no data).
pub async fn document() -> Response {
    Json(json()).into_response()
}

/// The document as JSON (`ApiDoc::openapi()`, adjusted). An object answered with its version (`allOf` the type and
/// `version`) must not keep the type's `additionalProperties: false` (which refuses unknown
/// fields in requests), or the version itself would break the answer's schema.
pub fn json() -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let mut referenced = Vec::new();
    open_all_of(&mut doc, &mut referenced);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        for name in referenced {
            if let Some(schema) = schemas.get_mut(&name).and_then(|s| s.as_object_mut()) {
                schema.remove("additionalProperties");
            }
        }
    }
    doc
}

/// Also: serde's untagged enums take the first variant that fits, which is `anyOf`, not
/// `oneOf` (an empty page fits both principal views).
fn open_all_of(v: &mut serde_json::Value, referenced: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(variants) = map.remove("oneOf") {
                map.insert("anyOf".into(), variants);
            }
            if let Some(serde_json::Value::Array(parts)) = map.get_mut("allOf") {
                for part in parts.iter_mut() {
                    if let Some(obj) = part.as_object_mut() {
                        obj.remove("additionalProperties");
                        if let Some(r) = obj.get("$ref").and_then(|r| r.as_str()) {
                            let name = r.rsplit('/').next().unwrap_or_default();
                            referenced.push(name.to_string());
                        }
                    }
                }
            }
            for child in map.values_mut() {
                open_all_of(child, referenced);
            }
        }
        serde_json::Value::Array(items) => {
            for child in items {
                open_all_of(child, referenced);
            }
        }
        _ => {}
    }
}
