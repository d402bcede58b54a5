//! A real OTLP/gRPC metrics receiver (opentelemetry-proto's generated
//! MetricsServiceServer) that records every request, can go down and come
//! back on the same port, and answers questions about what it received.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::{
    collector::metrics::v1::{
        metrics_service_server::{MetricsService, MetricsServiceServer},
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    },
    common::v1::{any_value, KeyValue},
    metrics::v1::{metric::Data, number_data_point, HistogramDataPoint, Metric, NumberDataPoint},
};
use tonic::{Request, Response, Status};

type Store = Arc<Mutex<Vec<ExportMetricsServiceRequest>>>;
type Headers = Arc<Mutex<tonic::metadata::MetadataMap>>;

/// Milliseconds the receiver waits before answering (a slow collector).
type Delay = Arc<std::sync::atomic::AtomicU64>;

struct Sink(Store, Headers, Delay);

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let delay = self.2.load(std::sync::atomic::Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        *self.1.lock().unwrap() = req.metadata().clone();
        self.0.lock().unwrap().push(req.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    /// (certificate chain PEM, key PEM) when serving TLS.
    tls: Option<(String, String)>,
    store: Store,
    headers: Headers,
    delay: Delay,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(None).await
    }

    /// Serve TLS with this certificate chain and key (PEM).
    pub async fn start_tls(cert_pem: String, key_pem: String) -> anyhow::Result<Self> {
        Self::start_with(Some((cert_pem, key_pem))).await
    }

    async fn start_with(tls: Option<(String, String)>) -> anyhow::Result<Self> {
        let mut r = Receiver {
            addr: "127.0.0.1:0".parse()?,
            tls,
            store: Store::default(),
            headers: Headers::default(),
            delay: Delay::default(),
            stop: None,
            task: None,
        };
        r.up().await?;
        Ok(r)
    }

    pub fn endpoint(&self) -> String {
        match self.tls {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", self.addr),
        }
    }

    /// (Re)start serving on the same address.
    pub async fn up(&mut self) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let svc = MetricsServiceServer::new(Sink(
            Arc::clone(&self.store),
            Arc::clone(&self.headers),
            Arc::clone(&self.delay),
        ));
        let mut builder = tonic::transport::Server::builder();
        if let Some((cert, key)) = &self.tls {
            let id = tonic::transport::Identity::from_pem(cert, key);
            builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(id))?;
        }
        self.task = Some(tokio::spawn(async move {
            let _ = builder
                .add_service(svc)
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = rx.await;
                    },
                )
                .await;
        }));
        self.stop = Some(tx);
        Ok(())
    }

    /// Stop serving: connections are refused until `up`.
    pub async fn down(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Answer every request only after `ms` milliseconds (0: at once).
    pub fn set_delay_ms(&self, ms: u64) {
        self.delay.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// A header (gRPC metadata) of the newest request.
    pub fn last_header(&self, name: &str) -> Option<String> {
        let h = self.headers.lock().unwrap();
        h.get(name)?.to_str().ok().map(str::to_string)
    }

    /// How many requests arrived so far (cheaper than `requests().len()`).
    pub fn count(&self) -> usize {
        self.store.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.store.lock().unwrap().clone()
    }

    /// Every request received since the last take, removed from the store
    /// (`count` and `requests` start over): memory stays bounded under many
    /// large requests.
    pub fn take_requests(&self) -> Vec<ExportMetricsServiceRequest> {
        std::mem::take(&mut *self.store.lock().unwrap())
    }

    /// Every metric named `name`, in arrival order.
    pub fn metrics(&self, name: &str) -> Vec<Metric> {
        self.requests()
            .into_iter()
            .flat_map(|r| r.resource_metrics)
            .flat_map(|rm| rm.scope_metrics)
            .flat_map(|sm| sm.metrics)
            .filter(|m| m.name == name)
            .collect()
    }

    /// Every Sum data point of `name` whose attributes include `attrs`.
    pub fn sum_points(&self, name: &str, attrs: &[(&str, &str)]) -> Vec<NumberDataPoint> {
        self.metrics(name)
            .into_iter()
            .filter_map(|m| match m.data {
                Some(Data::Sum(s)) => Some(s.data_points),
                _ => None,
            })
            .flatten()
            .filter(|p| has(&p.attributes, attrs))
            .collect()
    }

    /// Every histogram point of `name` whose attributes include `attrs`.
    pub fn hist_points(&self, name: &str, attrs: &[(&str, &str)]) -> Vec<HistogramDataPoint> {
        self.metrics(name)
            .into_iter()
            .filter_map(|m| match m.data {
                Some(Data::Histogram(h)) => Some(h.data_points),
                _ => None,
            })
            .flatten()
            .filter(|p| has(&p.attributes, attrs))
            .collect()
    }

    /// The newest value of a Sum series.
    pub fn latest(&self, name: &str, attrs: &[(&str, &str)]) -> Option<i64> {
        self.sum_points(name, attrs).last().map(int_value)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

pub fn int_value(p: &NumberDataPoint) -> i64 {
    match p.value {
        Some(number_data_point::Value::AsInt(v)) => v,
        Some(number_data_point::Value::AsDouble(v)) => v as i64,
        None => -1,
    }
}

/// An attribute's value rendered as text (ints as decimal).
pub fn attr(list: &[KeyValue], key: &str) -> Option<String> {
    list.iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            any_value::Value::StringValue(s) => s.clone(),
            any_value::Value::IntValue(i) => i.to_string(),
            any_value::Value::BoolValue(b) => b.to_string(),
            any_value::Value::DoubleValue(d) => d.to_string(),
            other => format!("{other:?}"),
        })
}

fn has(list: &[KeyValue], want: &[(&str, &str)]) -> bool {
    want.iter()
        .all(|(k, v)| attr(list, k).as_deref() == Some(*v))
}
