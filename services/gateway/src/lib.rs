//! telegen-gateway: the unprivileged REST front of telegen-sonic. It holds no
//! job state: every request becomes one call to the probe's gRPC API.

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod query;
pub mod tls;
pub mod tokens;

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use telegen_proto::v1::probe_client::ProbeClient;
use tonic::transport::Channel;
use tracing::{info, warn};

pub use config::Config;

#[derive(Clone)]
pub struct AppState {
    probe: ProbeClient<Channel>,
    pub tokens: Arc<tokens::Tokens>,
    pub rpc_timeout: Duration,
    pub openapi: Arc<serde_json::Value>,
}

impl AppState {
    /// `msg` as a request to the probe that names the REST caller, for the
    /// probe's audit log (x-telegen-caller; the probe trusts only the
    /// gateway's own socket credentials, and logs this beside them).
    pub fn as_caller<T>(&self, msg: T, who: Option<&tokens::Identity>) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        let who = match who {
            Some(id) => format!("rest token {} ({})", id.name, id.role.as_str()),
            None => "rest anonymous (no token configured)".into(),
        };
        if let Ok(v) = who.parse() {
            req.metadata_mut().insert("x-telegen-caller", v);
        }
        req
    }

    pub fn new(cfg: &Config) -> anyhow::Result<Self> {
        let doc = serde_json::to_value(api::openapi()).context("rendering the OpenAPI document")?;
        Ok(AppState {
            probe: ProbeClient::new(telegen_common::connect_probe(&cfg.probe)),
            tokens: Arc::new(cfg.tokens.clone()),
            rpc_timeout: cfg.rpc_timeout,
            openapi: Arc::new(doc),
        })
    }

    /// A client for one call (clones share the channel).
    pub fn probe(&self) -> ProbeClient<Channel> {
        self.probe.clone()
    }
}

/// Serve until `shutdown` resolves.
pub async fn serve(
    cfg: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(&cfg)?;
    let app = api::router(state, cfg.body_limit);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        warn!("running as root: the gateway needs no privilege; run it as an unprivileged user");
    }
    info!(
        listen = %listener.local_addr()?,
        probe = %cfg.probe,
        auth = ?cfg.tokens,
        tls = cfg.tls.is_some(),
        "serving the REST API"
    );
    if let Some(files) = cfg.tls.clone() {
        return tls::serve(listener, app, files, shutdown).await;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")
}
