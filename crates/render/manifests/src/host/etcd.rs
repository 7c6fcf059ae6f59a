//! etcd's settings on each controller: members named `etcd0`, `etcd1`, … in the order of
//! `etcd_servers`, each advertising its own name, TLS from the files the provider delivers.

pub use super::paths::{ETCD_ENV_PATH, ETCD_IMAGE_ENV_PATH, ETCD_SERVER_CERT, ETCD_TLS_DIR};
use crate::params::ManifestParams;

/// The member name of the `i`-th of `etcd_servers`.
pub fn member_name(i: usize) -> String {
    format!("etcd{i}")
}

/// `etcd.env` of the controller that is the `i`-th of `etcd_servers`, or `None` past the end.
pub fn env(p: &ManifestParams, i: usize) -> Option<String> {
    let me = p.etcd_servers.get(i)?;
    let url = |host: &str, port: u16| {
        if host.contains(':') {
            format!("https://[{host}]:{port}")
        } else {
            format!("https://{host}:{port}")
        }
    };
    let cluster = p
        .etcd_servers
        .iter()
        .enumerate()
        .map(|(j, h)| format!("{}={}", member_name(j), url(h, 2380)))
        .collect::<Vec<_>>()
        .join(",");
    let settings = [
        ("ETCD_NAME", member_name(i)),
        ("ETCD_DATA_DIR", "/var/lib/etcd".into()),
        ("ETCD_ADVERTISE_CLIENT_URLS", url(me, 2379)),
        ("ETCD_INITIAL_ADVERTISE_PEER_URLS", url(me, 2380)),
        ("ETCD_LISTEN_CLIENT_URLS", "https://0.0.0.0:2379".into()),
        ("ETCD_LISTEN_PEER_URLS", "https://0.0.0.0:2380".into()),
        ("ETCD_LISTEN_METRICS_URLS", "http://127.0.0.1:2381".into()),
        ("ETCD_INITIAL_CLUSTER", cluster),
        ("ETCD_STRICT_RECONFIG_CHECK", "true".into()),
        ("ETCD_TRUSTED_CA_FILE", format!("{ETCD_TLS_DIR}/server-ca.crt")),
        ("ETCD_CERT_FILE", ETCD_SERVER_CERT.into()),
        ("ETCD_KEY_FILE", format!("{ETCD_TLS_DIR}/server.key")),
        ("ETCD_CLIENT_CERT_AUTH", "true".into()),
        ("ETCD_PEER_TRUSTED_CA_FILE", format!("{ETCD_TLS_DIR}/peer-ca.crt")),
        ("ETCD_PEER_CERT_FILE", format!("{ETCD_TLS_DIR}/peer.crt")),
        ("ETCD_PEER_KEY_FILE", format!("{ETCD_TLS_DIR}/peer.key")),
        ("ETCD_PEER_CLIENT_CERT_AUTH", "true".into()),
    ];
    Some(settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect())
}
