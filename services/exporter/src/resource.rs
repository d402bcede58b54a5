//! The OTLP resource: service.name (OTEL_SERVICE_NAME, else telegen-sonic),
//! service.version (the embedded build version), host.name, and whatever
//! OTEL_RESOURCE_ATTRIBUTES adds — detected by the OpenTelemetry SDK.

use opentelemetry::KeyValue as SdkKeyValue;
use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, KeyValue},
    resource::v1::Resource,
};
use telegen_common::BuildInfo;

pub const DEFAULT_SERVICE_NAME: &str = "telegen-sonic";

pub fn build() -> Resource {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let in_attrs = |key: &str| {
        env("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| {
            a.split(',')
                .any(|kv| kv.split('=').next().map(str::trim) == Some(key))
        })
    };
    let named = env("OTEL_SERVICE_NAME").is_some() || in_attrs("service.name");
    let mut b = opentelemetry_sdk::Resource::builder();
    if !named {
        b = b.with_service_name(DEFAULT_SERVICE_NAME);
    }
    let mut extra = vec![SdkKeyValue::new(
        "service.version",
        BuildInfo::CURRENT.version,
    )];
    if !in_attrs("host.name") {
        extra.push(SdkKeyValue::new("host.name", hostname()));
    }
    let r = b.with_attributes(extra).build();
    let mut attributes: Vec<KeyValue> = r
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.to_string(),
            value: Some(AnyValue::from(v.clone())),
            ..Default::default()
        })
        .collect();
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
    Resource {
        attributes,
        ..Default::default()
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn has_service_version_and_host() {
        let r = super::build();
        let get = |k: &str| {
            r.attributes
                .iter()
                .find(|a| a.key == k)
                .and_then(|a| a.value.clone())
        };
        assert!(get("service.name").is_some());
        assert!(get("service.version").is_some());
        assert!(get("host.name").is_some());
    }
}
