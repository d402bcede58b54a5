//! Health, readiness, version and the OpenAPI document.

use std::time::Duration;

use axum::{extract::State, Json};
use telegen_common::{
    rest::{paths, ErrorBody, Health, Ready, Version},
    BuildInfo,
};
use telegen_proto::v1 as pb;

use crate::{error::ApiError, AppState};

/// The process is alive (never needs a token, never asks the probe).
#[utoipa::path(get, path = paths::HEALTHZ, tag = "system",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The probe answers: ready to take jobs.
#[utoipa::path(get, path = paths::READYZ, tag = "system",
    responses((status = 200, body = Ready),
              (status = 401, description = "Token required", body = ErrorBody),
              (status = 503, description = "The probe is not answering", body = ErrorBody)))]
pub async fn readyz(State(st): State<AppState>) -> Result<Json<Ready>, ApiError> {
    // Readiness probes want a quick answer, whatever the call timeout is.
    let quick = AppState {
        rpc_timeout: st.rpc_timeout.min(Duration::from_secs(2)),
        ..st.clone()
    };
    let info = super::jobs::call(&quick, st.probe().get_info(pb::GetInfoRequest {})).await?;
    Ok(Json(Ready {
        status: "ready".into(),
        probe: info.into(),
    }))
}

/// The gateway's embedded version, commit and build date.
#[utoipa::path(get, path = paths::VERSION, tag = "system",
    responses((status = 200, body = Version),
              (status = 401, description = "Token required", body = ErrorBody)))]
pub async fn version() -> Json<Version> {
    let b = BuildInfo::CURRENT;
    Json(Version {
        version: b.version.into(),
        commit: b.commit.into(),
        build_date: b.date.into(),
    })
}

/// This document (OpenAPI 3).
#[utoipa::path(get, path = paths::OPENAPI, tag = "system",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"),
              (status = 401, description = "Token required", body = ErrorBody)))]
pub async fn openapi_json(State(st): State<AppState>) -> Json<serde_json::Value> {
    Json((*st.openapi).clone())
}
