//! The REST API's bodies, routes and limits, declared once for the gateway
//! (which writes them, and with the `openapi` feature documents them) and
//! telegenctl (which reads them).
//!
//! Answers read leniently: unknown fields are ignored and a missing or null
//! value reads as `None` (or empty), so a client copes with an older or
//! newer gateway. Requests refuse unknown fields, so a typo never silently
//! changes what a job does.

mod job;
pub mod limits;
pub mod paths;
#[cfg(feature = "proto")]
pub mod proto;
mod results;
#[cfg(feature = "openapi")]
pub mod schema;
mod system;
#[cfg(test)]
mod tests;

pub use job::{CaptureOptions, Filters, Job, JobFilters, JobList, ProtoSpec, StartRequest};
pub use results::{
    CaptureStats, Coverage, Flow, FlowStats, OtelExport, ProtoCounters, Results, SizeHistogram,
};
pub use system::{ErrorBody, Health, ProbeInfo, Ready, Version};

/// Deserializers for reading leniently.
mod lenient {
    use std::fmt;

    use serde::{
        de::{self, Unexpected, Visitor},
        Deserialize, Deserializer,
    };

    /// A whole number: `120` and `120.0` alike, as JSON Schema's `integer`
    /// (which the OpenAPI document promises) counts both.
    struct Whole(u32);

    impl<'de> Deserialize<'de> for Whole {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = u32;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    write!(f, "a whole number from 0 to {}", u32::MAX)
                }
                fn visit_u64<E: de::Error>(self, n: u64) -> Result<u32, E> {
                    u32::try_from(n).map_err(|_| E::invalid_value(Unexpected::Unsigned(n), &self))
                }
                fn visit_i64<E: de::Error>(self, n: i64) -> Result<u32, E> {
                    u32::try_from(n).map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
                }
                fn visit_f64<E: de::Error>(self, x: f64) -> Result<u32, E> {
                    if x.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&x) {
                        Ok(x as u32)
                    } else {
                        Err(E::invalid_value(Unexpected::Float(x), &self))
                    }
                }
            }
            d.deserialize_any(V).map(Whole)
        }
    }

    pub fn whole<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        Whole::deserialize(d).map(|w| w.0)
    }

    pub fn whole_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        Ok(Option::<Whole>::deserialize(d)?.map(|w| w.0))
    }

    pub fn whole_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        Ok(Vec::<Whole>::deserialize(d)?
            .into_iter()
            .map(|w| w.0)
            .collect())
    }

    /// A null where a collection or object is expected reads as empty.
    pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }

    /// Any JSON value as text: a string as it is, anything else (but null)
    /// as its JSON, so an unexpected shape can still be shown.
    pub fn text<'de, D>(d: D) -> Result<Option<String>, D::Error>
    where
        D: Deserializer<'de>,
    {
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s),
            v => Some(v.to_string()),
        })
    }
}
