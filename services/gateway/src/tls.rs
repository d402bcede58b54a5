//! HTTPS: the gateway's certificate and key (TELEGEN_API_TLS_CERT,
//! TELEGEN_API_TLS_KEY, PEM), served with rustls, and read again on SIGHUP
//! so that a renewed certificate takes effect without a restart (a file
//! that does not load keeps the one in use, and says why).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// A rustls acceptor from the files as they are now.
    pub fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("reading {}", self.cert.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "{} holds no certificate",
            self.cert.display()
        );
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .with_context(|| format!("reading {}", self.key.display()))?;
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .with_context(|| {
                format!(
                    "{} and {} do not match",
                    self.cert.display(),
                    self.key.display()
                )
            })?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(cfg)))
    }
}

/// Serve `app` over TLS on `listener` until `shutdown`; reload `files` on
/// SIGHUP.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    files: TlsFiles,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let current = Arc::new(RwLock::new(files.acceptor()?));
    tokio::spawn(reload_on_hup(files, Arc::clone(&current)));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "accepting a connection");
                    continue;
                }
            },
        };
        let acceptor = current
            .read()
            .map(|a| a.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let app = app.clone();
        tokio::spawn(async move {
            // A client that never finishes its handshake holds no more than
            // this task, for no more than this long.
            let tls =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp))
                    .await;
            let tls = match tls {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return debug!(%peer, "TLS handshake timed out"),
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), svc)
                .await
            {
                debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}

async fn reload_on_hup(files: TlsFiles, current: Arc<RwLock<TlsAcceptor>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return warn!("cannot watch SIGHUP: the certificate is reloaded only by a restart");
    };
    while hup.recv().await.is_some() {
        match files.acceptor() {
            Ok(a) => {
                if let Ok(mut c) = current.write() {
                    *c = a;
                }
                info!(cert = %files.cert.display(), "SIGHUP: TLS certificate reloaded");
            }
            Err(e) => {
                warn!(error = %format!("{e:#}"), "SIGHUP: keeping the TLS certificate in use")
            }
        }
    }
}

/// Both files or neither.
pub fn from_vars(
    cert: Option<String>,
    key: Option<String>,
) -> Result<Option<TlsFiles>, telegen_common::ConfigError> {
    match (cert, key) {
        (Some(c), Some(k)) => Ok(Some(TlsFiles {
            cert: Path::new(c.trim()).into(),
            key: Path::new(k.trim()).into(),
        })),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(telegen_common::ConfigError::new(
            "TELEGEN_API_TLS_CERT",
            "TELEGEN_API_TLS_KEY is set without the certificate",
        )),
        (Some(_), None) => Err(telegen_common::ConfigError::new(
            "TELEGEN_API_TLS_KEY",
            "TELEGEN_API_TLS_CERT is set without its key",
        )),
    }
}
