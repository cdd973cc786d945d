//! Registry access for layerfs.
//!
//! This crate turns what a user types (`busybox`, `ghcr.io/org/app:1@sha256:…`) into typed
//! values, talks to OCI distribution registries through `oci-client`, and parses what they
//! return. It knows nothing about the store: callers receive verified manifests and raw blob
//! streams, and verify blobs themselves while writing them.
//!
//! - [`Reference`], [`Digest`], [`Platform`]: identifiers parsed once, at the edge.
//! - [`Manifest`]: an OCI or Docker schema 2 manifest or index.
//! - [`HostsConfig`]: per-registry mirrors and endpoints, as read from the config file.
//! - [`Client`]: fetches manifests and blobs, trying mirrors before the registry itself.

mod classify;
mod client;
mod digest;
mod error;
mod hosts;
mod manifest;
mod platform;
mod reference;

pub use client::{BlobStream, Client, FetchedManifest, Source, Timeouts};
pub use digest::{Digest, DigestParseError, Sha256Writer};
pub use error::{Error, Result};
pub use hosts::{Endpoint, HostConfig, HostsConfig};
pub use manifest::{
    select_platform, Compression, Descriptor, ImageManifest, IndexEntry, Manifest, MediaType,
};
pub use platform::{Platform, PlatformParseError};
pub use reference::{Reference, ReferenceParseError};
