//! `/account`: the self-service page (SPEC §6), plain HTML like the login page, on the same
//! session cookie. A person sees their roles and effective permissions, creates, lists and
//! revokes app passwords (the secret shown once), lists and ends their sessions, and changes
//! their password when the internal directory holds it. Every POST
//! carries the CSRF token of the login page; the cookie alone never changes anything.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use postern_directory::Credential as Secret;
use postern_internal::model::{Credential, CredentialType};
use postern_internal::store::{Expect, ListQuery, WriteError};
use postern_internal::StoreError;
use zeroize::Zeroizing;

use super::authorize::{csrf, csrf_ok, interactive};
use super::page::{self, esc, hidden};
use super::params::Params;
use crate::auth::clock::rfc3339;
use crate::auth::{Frontend, LoginError, Mechanism, PasswordAttempt, SessionView};
use crate::authz::Service;
use crate::http::cookie::{self, SESSION_COOKIE};
use crate::http::extract::{ClientIp, LimitedBody};
use crate::http::AppState;

/// A store write, tried again while SQLite reports its snapshot overtaken by another writer.
async fn retry_busy<T, F, Fut>(mut write: F) -> Result<T, WriteError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, WriteError>>,
{
    let mut result = write().await;
    for _ in 0..4 {
        if !matches!(&result, Err(WriteError::Store(StoreError::Busy(_)))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        result = write().await;
    }
    result
}

/// The person of the session cookie (a live session, not an API key).
async fn who(
    state: &AppState,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
) -> Option<(String, SessionView)> {
    let token = cookie::read(headers, SESSION_COOKIE)?;
    match state.engine.bearer(token, ip).await {
        Ok(Some(v)) if v.token.is_some() && interactive(&v.mechanism) => {
            Some((token.to_string(), v))
        }
        _ => None,
    }
}

fn with_cookie(mut r: Response, set: Option<HeaderValue>) -> Response {
    if let Some(c) = set {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

fn see_other(path: &'static str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(path));
    r
}

fn login_form(headers: &HeaderMap, status: StatusCode, message: Option<&str>) -> Response {
    let (token, set) = csrf(headers);
    let error = message
        .map(|m| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Your account</h1>{error}<form method=\"post\" action=\"/account\">{}\
<label for=\"username\">Username</label>\
<input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus>\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>",
        hidden(&[("csrf", &token), ("action", "login")])
    );
    with_cookie(page::html(status, "Sign in", &body), set)
}

async fn account_page(
    state: &AppState,
    headers: &HeaderMap,
    view: &SessionView,
    notice: Option<String>,
) -> Response {
    let (token, set) = csrf(headers);
    let store = state.engine.oauth_store();
    let name = &view.principal.name;
    let now = state.engine.clock().unix();
    let q = ListQuery {
        limit: 100,
        ..Default::default()
    };
    let (passwords, sessions) = match (
        store
            .credentials(CredentialType::AppPassword, Some(name), &q)
            .await,
        store.session_entries(name, now).await,
    ) {
        (Ok(p), Ok(s)) => (p.items, s),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "account page could not be read");
            return page::error(StatusCode::SERVICE_UNAVAILABLE, "Try again later.");
        }
    };
    let form = |action: &str, extra: &[(&str, &str)], button: &str| {
        let mut fields = vec![("csrf", token.as_str()), ("action", action)];
        fields.extend_from_slice(extra);
        format!(
            "<form method=\"post\" action=\"/account\">{}<button type=\"submit\">{}</button></form>",
            hidden(&fields),
            esc(button)
        )
    };
    let list = |items: &[String]| -> String {
        items
            .iter()
            .map(|i| format!("<li>{}</li>", esc(i)))
            .collect()
    };
    let app_rows: String = passwords
        .iter()
        .map(|c| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.value.description),
                esc(&c.value.id),
                form("revoke-app-password", &[("id", &c.value.id)], "Revoke")
            )
        })
        .collect();
    let session_rows: String = sessions
        .iter()
        .map(|s| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&rfc3339(s.created_at)),
                esc(&rfc3339(s.expires_at)),
                form("end-session", &[("id", &s.id)], "End")
            )
        })
        .collect();
    let notice = notice.unwrap_or_default();
    let body = format!(
        "<h1>{name}</h1>{notice}\
<h2>Roles</h2><ul id=\"roles\">{roles}</ul>\
<h2>Permissions</h2><ul id=\"permissions\">{perms}</ul>\
<h2>App passwords</h2><p>For mail clients that cannot sign in with OAuth.</p>\
<table id=\"app-passwords\"><tr><th>Description</th><th>Id</th><th></th></tr>{app_rows}</table>\
<form method=\"post\" action=\"/account\">{create}<label for=\"description\">New app password for</label>\
<input type=\"text\" id=\"description\" name=\"description\" maxlength=\"200\" required>\
<button type=\"submit\">Create</button></form>\
{password}<h2>Sessions</h2><table id=\"sessions\"><tr><th>Since</th><th>Until</th><th></th></tr>{session_rows}</table>\
{logout}",
        name = esc(name),
        roles = list(&view.roles),
        perms = list(&view.permissions),
        create = hidden(&[("csrf", &token), ("action", "create-app-password")]),
        logout = form("logout", &[], "Sign out"),
        password = if view.directory == "internal" && view.mechanism == "password" {
            format!(
                "<h2>Password</h2><form method=\"post\" action=\"/account\">{}\
<label for=\"current\">Current password</label>\
<input type=\"password\" id=\"current\" name=\"current\" autocomplete=\"current-password\" required>\
<label for=\"new\">New password</label>\
<input type=\"password\" id=\"new\" name=\"new\" autocomplete=\"new-password\" minlength=\"10\" required>\
<button type=\"submit\">Change password</button></form>",
                hidden(&[("csrf", &token), ("action", "change-password")])
            )
        } else {
            String::new()
        },
    );
    with_cookie(page::html(StatusCode::OK, "Your account", &body), set)
}

pub async fn show(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Response {
    match who(&state, &headers, ip).await {
        Some((_, view)) => account_page(&state, &headers, &view, None).await,
        None => login_form(&headers, StatusCode::OK, None),
    }
}

pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Response {
    let Ok(p) = Params::parse(&body) else {
        return page::error(StatusCode::BAD_REQUEST, "Malformed form.");
    };
    if !csrf_ok(&headers, &p) {
        state.engine.count_refusal("account", "csrf");
        return page::error(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Go back and try again.",
        );
    }
    if p.get("action") == Some("login") {
        return login(&state, ip, &headers, &p).await;
    }
    let Some((token, view)) = who(&state, &headers, ip).await else {
        return login_form(
            &headers,
            StatusCode::UNAUTHORIZED,
            Some("Your session has ended. Sign in again."),
        );
    };
    let name = view.principal.name.clone();
    let store = state.engine.oauth_store();
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "account change failed");
        page::error(StatusCode::SERVICE_UNAVAILABLE, "Try again later.")
    };
    let now = state.engine.clock().unix();
    match p.get("action") {
        Some("create-app-password") => {
            let cred = Credential {
                id: postern_internal::new_id(),
                account: name.clone(),
                description: p
                    .get("description")
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect(),
                expires_at: None,
                allowed_ips: Vec::new(),
                permissions: Default::default(),
            };
            let c = &cred;
            let written = retry_busy(|| async move {
                let mut tx = store.begin().await?;
                let w = tx
                    .put_credential(CredentialType::AppPassword, c, Expect::New)
                    .await?;
                tx.commit().await?;
                Ok(w.secret)
            })
            .await;
            match written {
                Ok(Some(secret)) => {
                    tracing::info!(account = %name, credential = %cred.id, "app password created on /account");
                    let notice = format!(
                        "<p role=\"status\">Your new app password (shown once): <code id=\"new-secret\">{}</code></p>",
                        esc(secret.as_str())
                    );
                    account_page(&state, &headers, &view, Some(notice)).await
                }
                Ok(None) => unavailable(&"no secret"),
                Err(e) => unavailable(&e),
            }
        }
        Some("revoke-app-password") => {
            let id = p.get("id").unwrap_or_default();
            match store.credential(CredentialType::AppPassword, id).await {
                Ok(Some(c)) if c.value.account == name => {
                    let done = retry_busy(|| async move {
                        let mut tx = store.begin().await?;
                        tx.delete_credential(CredentialType::AppPassword, id, None)
                            .await?;
                        tx.commit().await
                    })
                    .await;
                    match done {
                        Ok(_) => see_other("/account"),
                        Err(e) => unavailable(&e),
                    }
                }
                Ok(_) => page::error(StatusCode::NOT_FOUND, "No such app password."),
                Err(e) => unavailable(&e),
            }
        }
        Some("end-session") => match store
            .end_session_entry(&name, p.get("id").unwrap_or_default(), now)
            .await
        {
            Ok(_) => see_other("/account"),
            Err(e) => unavailable(&e),
        },
        Some("change-password") => {
            use crate::auth::self_service::PasswordChangeError as E;
            let current = Zeroizing::new(p.get("current").unwrap_or_default().to_string());
            let new = Zeroizing::new(p.get("new").unwrap_or_default().to_string());
            match state.engine.change_password(&name, current, new, ip).await {
                // Every session of the account ended with the old password.
                Ok(()) => login_form(
                    &headers,
                    StatusCode::OK,
                    Some("Your password was changed. Sign in with the new one."),
                ),
                Err(E::Unavailable) => unavailable(&"password change"),
                Err(e) => {
                    let notice = format!(
                        "<p class=\"error\" role=\"alert\">{}</p>",
                        esc(&e.to_string())
                    );
                    account_page(&state, &headers, &view, Some(notice)).await
                }
            }
        }
        Some("logout") => {
            if let Err(e) = state.engine.revoke(&token).await {
                return unavailable(&e);
            }
            let clear = state.settings().cookie.clear();
            with_cookie(see_other("/account"), clear)
        }
        _ => page::error(StatusCode::BAD_REQUEST, "Unknown action."),
    }
}

async fn login(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    p: &Params,
) -> Response {
    let attempt = PasswordAttempt {
        frontend: Frontend::Http,
        mechanism: Mechanism::Password,
        username: p.get("username").unwrap_or_default(),
        password: Secret::Password(Zeroizing::new(
            p.get("password").unwrap_or_default().to_string(),
        )),
        service: Service::HTTP,
        remote_ip: ip,
    };
    let principal = match state.engine.login(attempt).await {
        Ok(p) if interactive(p.method.as_str()) => p,
        Ok(_) => {
            return login_form(
                headers,
                StatusCode::UNAUTHORIZED,
                Some("Wrong username or password."),
            )
        }
        Err(LoginError::RateLimited(_)) => {
            return login_form(
                headers,
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many failed attempts. Wait a while and try again."),
            )
        }
        Err(LoginError::Unavailable) => {
            return login_form(
                headers,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("Sign-in is unavailable right now. Try again later."),
            )
        }
        Err(_) => {
            return login_form(
                headers,
                StatusCode::UNAUTHORIZED,
                Some("Wrong username or password."),
            )
        }
    };
    match state.engine.issue_session(&principal).await {
        Ok(view) => {
            let set = view
                .token
                .as_deref()
                .and_then(|t| state.settings().cookie.session(t, None));
            with_cookie(see_other("/account"), set)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot store session");
            page::error(StatusCode::SERVICE_UNAVAILABLE, "Try again later.")
        }
    }
}
