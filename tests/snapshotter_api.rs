//! `layerfs snapshotter`'s gRPC API called directly, without containerd: the status codes
//! containerd branches on, labels, filters, concurrent calls and a crash.

mod common;

use std::collections::HashMap;

use common::containerd::Snapshotter;
use common::grpc;
use common::Env;
use containerd_snapshots::api::snapshots::v1::snapshots_client::SnapshotsClient;
use containerd_snapshots::api::snapshots::v1::*;
use containerd_snapshots::api::types::Mount;
use tonic::transport::Channel;
use tonic::Code;

type Client = SnapshotsClient<Channel>;

fn start(env: &Env) -> Snapshotter {
    let socket = env.path("layerfs.sock");
    Snapshotter::start(
        &env.root,
        &env.config,
        &socket,
        &env.path("snapshotter.log"),
    )
}

async fn prepare(client: &mut Client, key: &str, parent: &str) -> Result<Vec<Mount>, Code> {
    let request = PrepareSnapshotRequest {
        key: key.to_owned(),
        parent: parent.to_owned(),
        ..Default::default()
    };
    match client.prepare(request).await {
        Ok(response) => Ok(response.into_inner().mounts),
        Err(status) => Err(status.code()),
    }
}

async fn view(client: &mut Client, key: &str, parent: &str) -> Result<Vec<Mount>, Code> {
    let request = ViewSnapshotRequest {
        key: key.to_owned(),
        parent: parent.to_owned(),
        ..Default::default()
    };
    match client.view(request).await {
        Ok(response) => Ok(response.into_inner().mounts),
        Err(status) => Err(status.code()),
    }
}

async fn commit(client: &mut Client, name: &str, key: &str) -> Result<(), Code> {
    let request = CommitSnapshotRequest {
        name: name.to_owned(),
        key: key.to_owned(),
        ..Default::default()
    };
    client.commit(request).await.map(drop).map_err(|s| s.code())
}

async fn remove(client: &mut Client, key: &str) -> Result<(), Code> {
    let request = RemoveSnapshotRequest {
        key: key.to_owned(),
        ..Default::default()
    };
    client.remove(request).await.map(drop).map_err(|s| s.code())
}

async fn stat(client: &mut Client, key: &str) -> Result<Info, Code> {
    let request = StatSnapshotRequest {
        key: key.to_owned(),
        ..Default::default()
    };
    match client.stat(request).await {
        Ok(response) => Ok(response.into_inner().info.unwrap()),
        Err(status) => Err(status.code()),
    }
}

async fn list(client: &mut Client, filters: &[&str]) -> Result<Vec<Info>, Code> {
    let request = ListSnapshotsRequest {
        filters: filters.iter().map(|f| f.to_string()).collect(),
        ..Default::default()
    };
    let mut stream = client
        .list(request)
        .await
        .map_err(|s| s.code())?
        .into_inner();
    let mut infos = Vec::new();
    while let Some(message) = stream.message().await.map_err(|s| s.code())? {
        infos.extend(message.info);
    }
    Ok(infos)
}

async fn update(
    client: &mut Client,
    name: &str,
    labels: &[(&str, &str)],
    paths: &[&str],
) -> Result<Info, Code> {
    let info = Info {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let request = UpdateSnapshotRequest {
        info: Some(info),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
        ..Default::default()
    };
    match client.update(request).await {
        Ok(response) => Ok(response.into_inner().info.unwrap()),
        Err(status) => Err(status.code()),
    }
}

const COMMITTED: i32 = 3;

#[test]
fn api_lifecycle_and_error_codes() {
    let env = Env::new();
    let _snapshotter = start(&env);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut c = grpc::snapshots(&env.path("layerfs.sock")).await;

        assert_eq!(
            stat(&mut c, "ns/1/missing").await.err(),
            Some(Code::NotFound)
        );
        let mounts = prepare(&mut c, "ns/1/a", "").await.unwrap();
        assert_eq!(mounts[0].r#type, "bind");
        assert_eq!(mounts[0].options, ["rw", "rbind"]);
        assert_eq!(
            prepare(&mut c, "ns/1/a", "").await.err(),
            Some(Code::AlreadyExists)
        );
        assert_eq!(
            view(&mut c, "ns/2/v", "ns/1/a").await.err(),
            Some(Code::InvalidArgument)
        );
        assert_eq!(
            prepare(&mut c, "ns/2/b", "ns/9/none").await.err(),
            Some(Code::NotFound)
        );
        assert_eq!(
            prepare(&mut c, "", "").await.err(),
            Some(Code::InvalidArgument)
        );

        std::fs::write(env.root.join("snapshots/1/fs/file"), "content").unwrap();
        commit(&mut c, "ns/3/base", "ns/1/a").await.unwrap();
        assert_eq!(stat(&mut c, "ns/3/base").await.unwrap().kind, COMMITTED);
        assert_eq!(
            commit(&mut c, "ns/4/again", "ns/1/a").await.err(),
            Some(Code::NotFound)
        );
        let mounts = client_mounts(&mut c, "ns/3/base").await;
        assert_eq!(mounts.err(), Some(Code::FailedPrecondition));

        let mounts = prepare(&mut c, "ns/5/b", "ns/3/base").await.unwrap();
        assert_eq!(mounts[0].r#type, "overlay");
        assert!(mounts[0].options.iter().any(|o| o.starts_with("upperdir=")));
        let mounts = view(&mut c, "ns/6/v", "ns/3/base").await.unwrap();
        assert_eq!(mounts[0].r#type, "bind");
        assert_eq!(mounts[0].options, ["ro", "rbind"]);
        assert!(
            mounts[0].source.ends_with("/snapshots/1/fs"),
            "{}",
            mounts[0].source
        );
        assert_eq!(
            commit(&mut c, "ns/7/c", "ns/6/v").await.err(),
            Some(Code::FailedPrecondition)
        );
        assert_eq!(
            remove(&mut c, "ns/3/base").await.err(),
            Some(Code::FailedPrecondition)
        );

        let updated = update(&mut c, "ns/3/base", &[("x", "y")], &["labels.x"])
            .await
            .unwrap();
        assert_eq!(updated.labels.get("x").map(String::as_str), Some("y"));
        let parent = update(&mut c, "ns/3/base", &[], &["parent"]).await;
        assert_eq!(parent.err(), Some(Code::InvalidArgument));
        let found = list(&mut c, &["labels.x==y,kind==committed"])
            .await
            .unwrap();
        let names: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["ns/3/base"]);
        assert_eq!(
            list(&mut c, &["kind="]).await.err(),
            Some(Code::InvalidArgument)
        );

        let usage = c.usage(UsageRequest {
            key: "ns/3/base".into(),
            ..Default::default()
        });
        let usage = usage.await.unwrap().into_inner();
        assert_eq!(usage.inodes, 2, "fs/ and its file");

        for key in ["ns/5/b", "ns/6/v", "ns/3/base"] {
            remove(&mut c, key).await.unwrap();
        }
        assert_eq!(list(&mut c, &[]).await.unwrap(), []);
        c.cleanup(CleanupRequest::default()).await.unwrap();
    });
    let left = common::containerd::dir_names(&env.root.join("snapshots"));
    assert_eq!(left, ["metadata.redb"]);
}

async fn client_mounts(client: &mut Client, key: &str) -> Result<Vec<Mount>, Code> {
    let request = MountsRequest {
        key: key.to_owned(),
        ..Default::default()
    };
    match client.mounts(request).await {
        Ok(response) => Ok(response.into_inner().mounts),
        Err(status) => Err(status.code()),
    }
}

#[test]
fn api_prepare_of_stored_chain_commits_it() {
    let env = Env::new();
    env.ok(&["pull", &common::direct("library/busybox:latest")]);
    let chain_id = format!(
        "sha256:{}",
        common::containerd::dir_names(&env.root.join("layers/sha256"))[0]
    );
    let _snapshotter = start(&env);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut c = grpc::snapshots(&env.path("layerfs.sock")).await;
        let labels = HashMap::from([("containerd.io/snapshot.ref".to_owned(), chain_id.clone())]);
        let request = PrepareSnapshotRequest {
            key: "ns/1/extract-1 chain".to_owned(),
            labels,
            ..Default::default()
        };
        let status = c.prepare(request).await.unwrap_err();
        assert_eq!(status.code(), Code::AlreadyExists);

        let filter = format!(r#"labels."containerd.io/snapshot.ref"=={chain_id},parent=="""#);
        let found = list(&mut c, &[&filter]).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, COMMITTED);
        assert!(found[0].name.starts_with("layerfs:"), "{}", found[0].name);
        assert_eq!(
            stat(&mut c, "ns/1/extract-1 chain").await.err(),
            Some(Code::NotFound)
        );

        remove(&mut c, &found[0].name).await.unwrap();
    });
    let layers = common::containerd::dir_names(&env.root.join("layers/sha256"));
    assert_eq!(layers.len(), 1, "the pulled layer stays in the store");
}

/// Chains prepared and committed at once, then a SIGKILL: every committed change is there
/// after a restart.
#[test]
fn api_concurrent_calls_survive_crash() {
    const CHAINS: usize = 16;
    let env = Env::new();
    let snapshotter = start(&env);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let socket = env.path("layerfs.sock");
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..CHAINS {
            let socket = socket.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = grpc::snapshots(&socket).await;
                prepare(&mut c, &format!("ns/{i}/a"), "").await.unwrap();
                commit(&mut c, &format!("ns/{i}/base"), &format!("ns/{i}/a"))
                    .await
                    .unwrap();
                prepare(&mut c, &format!("ns/{i}/top"), &format!("ns/{i}/base"))
                    .await
                    .unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    snapshotter.kill();

    let _snapshotter = start(&env);
    runtime.block_on(async {
        let mut c = grpc::snapshots(&socket).await;
        let committed = list(&mut c, &["kind==committed"]).await.unwrap();
        let active = list(&mut c, &["kind==active"]).await.unwrap();
        assert_eq!(committed.len(), CHAINS);
        assert_eq!(active.len(), CHAINS);
        let top = stat(&mut c, "ns/7/top").await.unwrap();
        assert_eq!(top.parent, "ns/7/base");
    });
    let dirs = common::containerd::dir_names(&env.root.join("snapshots"));
    assert_eq!(dirs.len(), 2 * CHAINS + 1, "{dirs:?}");
}

#[test]
fn unknown_driver_config_fails_clearly() {
    let env = Env::new();
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str("\n[snapshotter]\ndriver = \"bogus\"\n");
    std::fs::write(&env.config, config).unwrap();
    let socket = env.path("layerfs.sock");
    let stderr = env.fails(&["snapshotter", "--address", socket.to_str().unwrap()]);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
    assert!(stderr.contains("overlay"), "{stderr}");
    assert!(!socket.exists());
}
