//! Bearer tokens: when any is configured (tokens.rs), every route but
//! /healthz needs `Authorization: Bearer <token>`; a `read` token may not
//! change anything (POST, PUT, PATCH, DELETE: starts and stops), which is
//! 403 `forbidden`. The identity goes with the request, for the probe's
//! audit log.

use axum::{
    extract::{Request, State},
    http::{header::AUTHORIZATION, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use telegen_common::rest::paths;

use crate::tokens::Role;
use crate::{error::ApiError, AppState};

pub async fn require_token(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    if st.tokens.is_empty() || req.uri().path() == paths::HEALTHZ {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(id) = given.and_then(|g| st.tokens.identify(g)) else {
        let mut resp = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this gateway needs Authorization: Bearer <token> (TELEGEN_API_TOKEN_FILE or TELEGEN_API_TOKEN)",
        )
        .into_response();
        resp.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
        return resp;
    };
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // Packets carry what counters do not (payloads, addresses): operate.
    let packets = req.uri().path().ends_with("/capture");
    if packets && id.role == Role::Read {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token {:?} has role read: packet captures need role operate",
                id.name
            ),
        )
        .into_response();
    }
    if changes && id.role == Role::Read {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token {:?} has role read: it may list jobs and read them, not start or stop them",
                id.name
            ),
        )
        .into_response();
    }
    req.extensions_mut().insert(id);
    next.run(req).await
}
