//! The `etcd-snapshot` phase against real OpenSSH servers (the test bed) whose hosts run no
//! etcd: the update stops before anything changes, naming every controller it asked and why
//! each gave no snapshot, and leaves no file behind.

use std::collections::BTreeMap;

use selfhosted_pivot::etcd_snapshot;
use selfhosted_pivot::Phase;
use selfhosted_pki::{issue, parse, RawParams};
use selfhosted_transport::testbed::{Testbed, TestbedParams};
use selfhosted_transport::{CancellationToken, Fleet};

#[tokio::test]
async fn no_member_answering_stops_the_update_naming_each_controller() {
    let Some(tb) = Testbed::up(
        "etcd snapshot refused",
        &TestbedParams {
            count: 2,
            ..Default::default()
        },
    )
    .unwrap() else {
        return;
    };
    let addrs: Vec<String> = tb.hosts().iter().map(|h| h.address.clone()).collect();
    let params = parse(&RawParams {
        cluster_name: Some("snap".into()),
        api_servers: Some(vec![addrs[0].clone()]),
        etcd_servers: Some(addrs.clone()),
        ..RawParams::defaults()
    })
    .expect("pki params");
    let assets: BTreeMap<String, String> = issue(&params, None, time::OffsetDateTime::now_utc())
        .expect("rendered pki")
        .into_iter()
        .collect();
    let cancel = CancellationToken::new();
    let (fleet, _) = Fleet::connect_all(&tb.specs().unwrap(), 2, &cancel).await.unwrap();
    let sessions: Vec<_> = fleet.sessions().iter().collect();
    let local = tempfile::tempdir().unwrap();

    let err = etcd_snapshot::take(&sessions, &assets, "/var/lib/selfhosted", Some(local.path()))
        .await
        .expect_err("no etcd runs on the test bed's hosts");
    eprintln!("{}", err.detail());
    assert_eq!(err.phase, Phase::EtcdSnapshot);
    assert!(
        err.message.contains("nothing was changed") && err.message.contains("disaster-recovery"),
        "{err:?}"
    );
    for h in tb.hosts() {
        assert!(
            err.evidence
                .iter()
                .any(|e| e.starts_with(&format!("{}: ", h.name)) && e.contains("2379")),
            "{} is named with its reason: {:?}",
            h.name,
            err.evidence
        );
        let left = tb.host_exec(&h.name, &["ls", "/var/lib/selfhosted/etcd-snapshots"]);
        assert!(
            !left.status.success() || left.stdout.is_empty(),
            "nothing written on {}",
            h.name
        );
    }
    assert_eq!(
        std::fs::read_dir(local.path()).unwrap().count(),
        0,
        "nothing written locally"
    );
    fleet.close().await;
}
