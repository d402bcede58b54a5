//! Health, readiness, version, and the error body of every non-2xx answer.

use serde::{Deserialize, Serialize};

/// Error body of every non-2xx answer. Missing fields read as empty, so a
/// client can fall back to the status when a proxy answered instead.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ErrorBody {
    /// Machine-readable code: invalid_request, invalid_json, not_supported,
    /// not_found, method_not_allowed, conflict, payload_too_large,
    /// unsupported_media_type, unauthorized, concurrency_limit,
    /// probe_unavailable, internal.
    #[cfg_attr(
        feature = "openapi",
        schema(required = true, example = "concurrency_limit")
    )]
    pub error: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            example = "At most 2 concurrent jobs are allowed. Try again later."
        )
    )]
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    #[cfg_attr(feature = "openapi", schema(example = "ok"))]
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ready {
    #[cfg_attr(feature = "openapi", schema(example = "ready"))]
    pub status: String,
    pub probe: ProbeInfo,
}

/// What the probe says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProbeInfo {
    pub version: String,
    pub commit: String,
    pub build_date: String,
    pub kernel: String,
    pub datapath_enabled: bool,
    pub datapath_reason: Option<String>,
    pub attach_mode: String,
    pub mirror_mode: String,
    pub max_jobs: u32,
}

/// A service's embedded build (SPEC section 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Version {
    #[cfg_attr(feature = "openapi", schema(example = "release/mark-v0-1-0"))]
    pub version: String,
    pub commit: String,
    pub build_date: String,
}
