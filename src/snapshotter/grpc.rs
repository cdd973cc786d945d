//! The gRPC side: `containerd.services.snapshots.v1.Snapshots` on a unix socket, through the
//! `containerd-snapshots` crate's service plumbing.
//!
//! Each call runs the blocking `Snapshotter` method on tokio's blocking pool, so calls that
//! containerd makes in parallel proceed in parallel (reads) or queue on the metadata write
//! transaction (changes). Errors become the status codes that containerd's `errdefs` turns
//! back into its error kinds.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::Arc;

use containerd_snapshots::api::types::Mount as GrpcMount;
use containerd_snapshots::tonic::{self, Code, Status};
use containerd_snapshots::{Info, Kind as GrpcKind, Usage as GrpcUsage};
use futures::stream::{self, Iter};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tracing::{debug, info, warn};

use super::snapshots::Labels;
use super::{Error, Kind, Mount, SnapshotInfo, Snapshotter, Usage};
use crate::fs_error::{FsContext, FsError};

/// Serves `snapshotter` on the unix socket `address` until `shutdown` completes, then removes
/// the socket.
pub async fn serve(
    snapshotter: Snapshotter,
    address: &Path,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServeError> {
    let listener = bind(address).await?;
    info!(address = %address.display(), "serving containerd snapshots");
    let service = Service {
        snapshotter: Arc::new(snapshotter),
    };
    let result = tonic::transport::Server::builder()
        .add_service(containerd_snapshots::server(Arc::new(service)))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await;
    let _ = std::fs::remove_file(address);
    result.map_err(|error| ServeError::Transport(error.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Fs(#[from] FsError),

    #[error("{0} is in use: another process serves on it")]
    InUse(std::path::PathBuf),

    #[error("serving gRPC: {0}")]
    Transport(String),
}

/// Binds `address`, replacing a socket file that nothing listens on any more (a snapshotter
/// that was killed leaves its socket behind).
async fn bind(address: &Path) -> Result<UnixListener, ServeError> {
    match std::fs::symlink_metadata(address) {
        Ok(metadata) if metadata.file_type().is_socket() => {
            if tokio::net::UnixStream::connect(address).await.is_ok() {
                return Err(ServeError::InUse(address.to_path_buf()));
            }
            debug!(address = %address.display(), "removing stale socket");
            std::fs::remove_file(address).at("removing stale socket", address)?;
        }
        Ok(_) => {
            let error = io::Error::new(io::ErrorKind::AlreadyExists, "not a socket");
            return Err(FsError::new("binding", address, error).into());
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(FsError::new("checking socket", address, error).into()),
    }
    if let Some(parent) = address.parent() {
        std::fs::create_dir_all(parent).at("creating socket directory", parent)?;
    }
    Ok(UnixListener::bind(address).at("binding", address)?)
}

struct Service {
    snapshotter: Arc<Snapshotter>,
}

impl Service {
    /// Runs `work` on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Snapshotter) -> super::Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let snapshotter = self.snapshotter.clone();
        match tokio::task::spawn_blocking(move || work(&snapshotter)).await {
            Ok(result) => result.map_err(status),
            Err(error) => Err(Status::internal(format!(
                "snapshotter task failed: {error}"
            ))),
        }
    }
}

#[tonic::async_trait]
impl containerd_snapshots::Snapshotter for Service {
    type Error = Status;

    async fn stat(&self, key: String) -> Result<Info, Status> {
        let info = self.run(move |s| s.stat(&key)).await?;
        Ok(to_grpc_info(info))
    }

    async fn update(&self, info: Info, paths: Option<Vec<String>>) -> Result<Info, Status> {
        let labels = to_labels(info.labels);
        let paths = paths.unwrap_or_default();
        let name = info.name;
        let info = self.run(move |s| s.update(&name, labels, &paths)).await?;
        Ok(to_grpc_info(info))
    }

    async fn usage(&self, key: String) -> Result<GrpcUsage, Status> {
        let usage: Usage = self.run(move |s| s.usage(&key)).await?;
        Ok(GrpcUsage {
            inodes: usage.inodes as i64,
            size: usage.size as i64,
        })
    }

    async fn mounts(&self, key: String) -> Result<Vec<GrpcMount>, Status> {
        let mounts = self.run(move |s| s.mounts(&key)).await?;
        Ok(to_grpc_mounts(mounts))
    }

    async fn prepare(
        &self,
        key: String,
        parent: String,
        labels: HashMap<String, String>,
    ) -> Result<Vec<GrpcMount>, Status> {
        let labels = to_labels(labels);
        let mounts = self.run(move |s| s.prepare(&key, &parent, labels)).await?;
        Ok(to_grpc_mounts(mounts))
    }

    async fn view(
        &self,
        key: String,
        parent: String,
        labels: HashMap<String, String>,
    ) -> Result<Vec<GrpcMount>, Status> {
        let labels = to_labels(labels);
        let mounts = self.run(move |s| s.view(&key, &parent, labels)).await?;
        Ok(to_grpc_mounts(mounts))
    }

    async fn commit(
        &self,
        name: String,
        key: String,
        labels: HashMap<String, String>,
    ) -> Result<(), Status> {
        let labels = to_labels(labels);
        self.run(move |s| s.commit(&name, &key, labels)).await
    }

    async fn remove(&self, key: String) -> Result<(), Status> {
        self.run(move |s| s.remove(&key)).await
    }

    async fn clear(&self) -> Result<(), Status> {
        self.run(|s| s.cleanup()).await
    }

    type InfoStream = Iter<std::vec::IntoIter<Result<Info, Status>>>;

    // The trait fixes the stream's error type to tonic's `Status`, however large.
    #[allow(clippy::result_large_err)]
    async fn list(
        &self,
        _snapshotter: String,
        filters: Vec<String>,
    ) -> Result<Self::InfoStream, Status> {
        let infos = self.run(move |s| s.list(&filters)).await?;
        let infos: Vec<Result<Info, Status>> =
            infos.into_iter().map(|i| Ok(to_grpc_info(i))).collect();
        Ok(stream::iter(infos))
    }
}

/// Converts an error to the status code that containerd's `errdefs.FromGRPC` maps back to
/// its error kind.
fn status(error: Error) -> Status {
    let code = match &error {
        Error::NotFound(_) => Code::NotFound,
        Error::AlreadyExists(_) | Error::LayerExists { .. } => Code::AlreadyExists,
        Error::WrongKind { .. } | Error::HasChildren(_) => Code::FailedPrecondition,
        Error::ParentNotCommitted(_)
        | Error::InvalidKey(..)
        | Error::ImmutableField(_)
        | Error::Filter(_) => Code::InvalidArgument,
        Error::UnsafeRoot(_)
        | Error::FuseDevice { .. }
        | Error::NoMountDriver { .. }
        | Error::Metadata { .. }
        | Error::MetadataLocked(_)
        | Error::Corrupt { .. }
        | Error::Store(_)
        | Error::Fs(_) => Code::Internal,
    };
    if code == Code::Internal {
        warn!(%error, "snapshot call failed");
    }
    Status::new(code, error.to_string())
}

fn to_labels(labels: HashMap<String, String>) -> Labels {
    labels.into_iter().collect()
}

fn to_grpc_info(info: SnapshotInfo) -> Info {
    Info {
        kind: match info.kind {
            Kind::View => GrpcKind::View,
            Kind::Active => GrpcKind::Active,
            Kind::Committed => GrpcKind::Committed,
        },
        name: info.name,
        parent: info.parent.unwrap_or_default(),
        labels: info.labels.into_iter().collect(),
        created_at: info.created,
        updated_at: info.updated,
    }
}

fn to_grpc_mounts(mounts: Vec<Mount>) -> Vec<GrpcMount> {
    mounts
        .into_iter()
        .map(|mount| GrpcMount {
            r#type: mount.kind,
            source: mount.source,
            target: String::new(),
            options: mount.options,
        })
        .collect()
}
