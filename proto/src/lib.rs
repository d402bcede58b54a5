//! Generated code for the `telegen.v1` probe API (see `telegen/v1/probe.proto`).

#![allow(clippy::all)]

pub mod v1 {
    tonic::include_proto!("telegen.v1");
}

/// Encoded `FileDescriptorSet` of the API, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("telegen_descriptor");
