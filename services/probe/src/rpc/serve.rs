//! Serving: the Probe service plus grpc.health.v1 and server reflection (v1
//! and v1alpha, so grpcurl 1.8 works without .proto files), on a unix socket
//! (mode 0660) or TCP.

use std::{os::unix::fs::PermissionsExt, sync::Arc};

use anyhow::Context;
use telegen_common::ProbeAddr;
use telegen_proto::v1::probe_server::ProbeServer;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::transport::server::Router;
use tonic::transport::Server;
use tracing::info;

use super::access::Allow;
use super::service::{ProbeInfo, ProbeService};
use super::tls::ProbeTls;
use crate::jobs::JobManager;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct Listen {
    pub addr: ProbeAddr,
    /// The unix socket's group (mode 0660), for the unprivileged services.
    pub socket_gid: Option<u32>,
    /// Who may call over the unix socket (TELEGEN_PROBE_ALLOW).
    pub allow: super::access::Allow,
    /// Mutual TLS on a TCP address.
    pub tls: Option<ProbeTls>,
    /// TELEGEN_PROBE_LOCAL_TCP: a loopback TCP listener beside the unix
    /// socket, under the same allow-list, for gRPC clients that cannot use
    /// a unix socket with their defaults (grpcio, grpc-java).
    pub local_tcp: Option<std::net::SocketAddr>,
}

/// The services, once per listener: health, reflection (v1 and v1alpha),
/// and the Probe service behind the access check; TLS when given.
async fn router(
    mgr: &Arc<JobManager>,
    info: &ProbeInfo,
    allow: &Arc<Allow>,
    tls: Option<&ProbeTls>,
) -> anyhow::Result<Router> {
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ProbeServer<ProbeService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(telegen_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(telegen_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let mut server = Server::builder();
    if let Some(tls) = tls {
        server = server
            .tls_config(tls.server_config()?)
            .context("setting up the probe's TLS")?;
    }
    let allow = Arc::clone(allow);
    Ok(server
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ProbeServer::with_interceptor(
            ProbeService::new(Arc::clone(mgr), info.clone()),
            move |req| super::access::check(&allow, req),
        )))
}

pub async fn serve(
    mgr: Arc<JobManager>,
    info: ProbeInfo,
    listen: Listen,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // One shutdown for every listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let allow = Arc::new(listen.allow.clone());
    let local = match listen.local_tcp {
        None => None,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding TELEGEN_PROBE_LOCAL_TCP {addr}"))?;
            info!(addr = %listener.local_addr()?, "serving gRPC on loopback TCP too (same allow-list)");
            let router = router(&mgr, &info, &allow, None).await?;
            let stop = until_stopped(stopped.clone());
            Some(tokio::spawn(async move {
                router
                    .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop)
                    .await
            }))
        }
    };
    let router = router(&mgr, &info, &allow, listen.tls.as_ref()).await?;
    let shutdown = until_stopped(stopped);
    match &listen.addr {
        ProbeAddr::Unix(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            // A socket left by a crashed probe: only a socket file is
            // removed, and only when nothing answers on it (a live probe's
            // socket is never taken over).
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!(
                    "another process serves on {}; stop it first, or give this probe its own TELEGEN_PROBE_ADDR",
                    path.display()
                );
            }
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                use std::os::unix::fs::FileTypeExt;
                anyhow::ensure!(
                    meta.file_type().is_socket(),
                    "{} exists and is not a socket",
                    path.display()
                );
                std::fs::remove_file(path)
                    .with_context(|| format!("removing stale {}", path.display()))?;
            }
            let listener = tokio::net::UnixListener::bind(path)
                .with_context(|| format!("binding {}", path.display()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
            if let Some(gid) = listen.socket_gid {
                std::os::unix::fs::chown(path, None, Some(gid))
                    .with_context(|| format!("giving {} to gid {gid}", path.display()))?;
            }
            info!(addr = %listen.addr, "serving gRPC");
            router
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
                .await?;
            let _ = std::fs::remove_file(path);
        }
        ProbeAddr::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            info!(addr = %listener.local_addr()?, mutual_tls = listen.tls.is_some(), "serving gRPC");
            router
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                .await?;
        }
    }
    if let Some(local) = local {
        local.await??;
    }
    Ok(())
}
