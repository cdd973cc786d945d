//! gRPC clients over unix sockets: the snapshotter's own service, and the one call of
//! Kubernetes' CRI image service (`runtime.v1.ImageService/PullImage`) that the tests need,
//! declared by hand with its field numbers from the CRI API's `api.proto`.

use std::path::{Path, PathBuf};

use containerd_snapshots::api::snapshots::v1::snapshots_client::SnapshotsClient;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint, Uri};

/// Connects to the gRPC server on the unix socket `path`.
pub async fn connect(path: &Path) -> Channel {
    let path: PathBuf = path.to_path_buf();
    // The URI is required by the API but unused: the connector ignores it.
    Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            tokio::net::UnixStream::connect(path.clone())
        }))
        .await
        .unwrap()
}

pub async fn snapshots(path: &Path) -> SnapshotsClient<Channel> {
    SnapshotsClient::new(connect(path).await)
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageSpec {
    #[prost(string, tag = "1")]
    pub image: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PullImageRequest {
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageSpec>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PullImageResponse {
    #[prost(string, tag = "1")]
    pub image_ref: String,
}

/// Pulls `image` through containerd's CRI plugin, as the kubelet does; returns the image ID.
pub async fn cri_pull(containerd_socket: &Path, image: &str) -> String {
    let mut client = tonic::client::Grpc::new(connect(containerd_socket).await);
    client.ready().await.unwrap();
    let request = PullImageRequest {
        image: Some(ImageSpec {
            image: image.to_owned(),
        }),
    };
    let path = PathAndQuery::from_static("/runtime.v1.ImageService/PullImage");
    let codec = tonic::codec::ProstCodec::<PullImageRequest, PullImageResponse>::default();
    let response = client
        .unary(tonic::Request::new(request), path, codec)
        .await
        .unwrap_or_else(|status| panic!("CRI pull of {image} failed: {status}"));
    response.into_inner().image_ref
}
