//! The fleet section's channels: the exporter's, over a TCP connector that
//! counts the bytes each way.

use std::{
    io::{IoSlice, Result as IoResult},
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    task::{Context, Poll},
};

use hyper_util::rt::TokioIo;
use telegen_exporter::config::Config;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::{Channel, Endpoint, Uri};

/// Bytes through the simulated exporters' TCP connections (HTTP/2 frames:
/// no TCP/IP headers), to the receiver and back.
#[derive(Default)]
pub struct Wire {
    pub sent: AtomicU64,
    pub received: AtomicU64,
}

/// A TCP stream counting what passes through it into a `Wire`.
struct Counted(tokio::net::TcpStream, Arc<Wire>);

impl Counted {
    fn wrote(&self, r: &Poll<IoResult<usize>>) {
        if let Poll::Ready(Ok(n)) = r {
            self.1.sent.fetch_add(*n as u64, Relaxed);
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context,
        buf: &mut ReadBuf,
    ) -> Poll<IoResult<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.0).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.1.received.fetch_add(n as u64, Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context, b: &[u8]) -> Poll<IoResult<usize>> {
        let r = Pin::new(&mut self.0).poll_write(cx, b);
        self.wrote(&r);
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context,
        b: &[IoSlice],
    ) -> Poll<IoResult<usize>> {
        let r = Pin::new(&mut self.0).poll_write_vectored(cx, b);
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<IoResult<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<IoResult<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// The exporter's channel (export.rs: lazy, connect timeout = the export
/// timeout, tonic's defaults otherwise: no compression, TCP_NODELAY) over a
/// TCP connector counting into `wire`.
pub fn channel(cfg: &Config, wire: &Arc<Wire>) -> anyhow::Result<Channel> {
    let wire = Arc::clone(wire);
    let ep = Endpoint::from_shared(cfg.endpoint.clone())?.connect_timeout(cfg.timeout);
    let connect = tower::service_fn(move |uri: Uri| {
        let wire = Arc::clone(&wire);
        async move {
            let host = uri.host().unwrap_or_default().to_string();
            let s = tokio::net::TcpStream::connect((host, uri.port_u16().unwrap_or(80))).await?;
            s.set_nodelay(true)?;
            Ok::<_, std::io::Error>(TokioIo::new(Counted(s, wire)))
        }
    });
    Ok(ep.connect_with_connector_lazy(connect))
}
