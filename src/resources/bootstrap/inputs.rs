//! Configuration of `selfhosted_bootstrap` → the pivot's inventory and
//! parameters, with every problem reported on the attribute to fix.

use std::collections::BTreeMap;
use std::time::Duration;

use selfhosted_pivot::procedure::ApiAccess;
use selfhosted_pivot::{Host, Inventory, RemotePaths, Role};
use selfhosted_protocol::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use selfhosted_protocol::value::Value;
use selfhosted_transport::{Auth, HopSpec, HostKeyPolicy, HostSpec};

use super::schema::attr;

/// What destroying the resource does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDestroy {
    /// Nothing on the hosts.
    Keep,
    /// Remove this provider's files from the hosts.
    Teardown,
}

impl OnDestroy {
    /// The configured behaviour (default keep), or the unknown word given.
    pub fn of(config: &Value) -> Result<Self, String> {
        match config.get(attr::ON_DESTROY).and_then(Value::as_str) {
            None | Some("keep") => Ok(OnDestroy::Keep),
            Some("teardown") => Ok(OnDestroy::Teardown),
            Some(other) => Err(other.to_owned()),
        }
    }
}

/// Checked configuration.
#[derive(Debug)]
pub struct Config {
    /// The hosts.
    pub inventory: Inventory,
    /// The assets.
    pub assets: BTreeMap<String, String>,
    /// How to reach the API.
    pub access: ApiAccess,
    /// Remote paths.
    pub paths: RemotePaths,
    /// Deadlines.
    pub create_timeout: Duration,
    /// Deadline of updates.
    pub update_timeout: Duration,
    /// Deadline of deletes.
    pub delete_timeout: Duration,
}

struct Ctx<'a> {
    diags: Diagnostics,
    unknown: bool,
    config: &'a Value,
}

impl Ctx<'_> {
    /// An error on `path`; the summary names the path too, since Terraform
    /// can point at nested attributes only when they are written literally.
    fn err(&mut self, path: AttributePath, summary: &str, detail: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(format!("{summary}: {path}"), detail).at(path));
    }

    fn duration(&mut self, block: &Value, name: &str, default: Duration, path: AttributePath) -> Duration {
        match field(block, name) {
            Field::Str(s) => match humantime::parse_duration(&s) {
                Ok(d) if d > Duration::ZERO => d,
                _ => {
                    self.err(
                        path.attr(name),
                        "Invalid duration",
                        format!("{s:?} is not a duration; write e.g. \"30s\", \"5m\" or \"1h30m\""),
                    );
                    default
                }
            },
            Field::Unknown => {
                self.unknown = true;
                default
            }
            _ => default,
        }
    }
}

enum Field {
    Absent,
    Unknown,
    Str(String),
    Int(i64),
    Bool(bool),
    Other,
}

fn field(obj: &Value, name: &str) -> Field {
    match obj.get(name) {
        None => Field::Absent,
        Some(v) if v.is_null() => Field::Absent,
        Some(v) if !v.is_known() => Field::Unknown,
        Some(v) => {
            if let Some(s) = v.as_str() {
                Field::Str(s.to_owned())
            } else if let Some(i) = v.as_i64() {
                Field::Int(i)
            } else if let Some(b) = v.as_bool() {
                Field::Bool(b)
            } else {
                Field::Other
            }
        }
    }
}

fn port(ctx: &mut Ctx, obj: &Value, default: u16, path: AttributePath) -> u16 {
    match field(obj, "port") {
        Field::Int(p) => match u16::try_from(p) {
            Ok(p) if p > 0 => p,
            _ => {
                ctx.err(
                    path.attr("port"),
                    "Invalid port",
                    format!("{p} is not a TCP port; write 1 to 65535"),
                );
                default
            }
        },
        Field::Unknown => {
            ctx.unknown = true;
            default
        }
        _ => default,
    }
}

fn string(ctx: &mut Ctx, obj: &Value, name: &str) -> Option<String> {
    match field(obj, name) {
        Field::Str(s) => Some(s),
        Field::Unknown => {
            ctx.unknown = true;
            None
        }
        _ => None,
    }
}

/// Whether `name` can be a Kubernetes node name (an RFC 1123 subdomain), else an error on `path`.
/// The kubelet registers the host's hostname, lowercased: on AWS `ip-10-0-1-23.ec2.internal`
/// or `ip-10-0-1-23`, on DigitalOcean the droplet's name.
fn node_name(ctx: &mut Ctx, name: &str, path: AttributePath) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) {
        return true;
    }
    let lower = name.trim().to_ascii_lowercase();
    let hint = if !lower.is_empty() && lower != name && lower.len() <= 253 && lower.split('.').all(label_ok) {
        format!("write {lower:?}: the kubelet registers its hostname in lower case")
    } else {
        "write the host's hostname as its kubelet registers it: lower-case letters, digits, '-' and '.', \
         e.g. \"ip-10-0-1-23\" on AWS"
            .to_owned()
    };
    ctx.err(
        path,
        "Invalid node name",
        format!("{name:?} cannot be a Kubernetes node name; {hint}"),
    );
    false
}

/// Whether an address was given (not blank), else an error on `path`.
fn address_given(ctx: &mut Ctx, address: &str, path: AttributePath) -> bool {
    if !address.trim().is_empty() && address.trim() == address {
        return true;
    }
    ctx.err(
        path,
        "Invalid address",
        format!("{address:?}; write the IP address or DNS name SSH reaches the host at, e.g. \"10.0.1.23\""),
    );
    false
}

fn pin(ctx: &mut Ctx, text: &str, path: AttributePath) -> Option<HostKeyPolicy> {
    match HostKeyPolicy::try_pinned(&[text]) {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.err(
                path,
                "Invalid host key",
                format!("{e}; write a known_hosts line, a public key (`ssh-ed25519 AAAA…`) or a `SHA256:` fingerprint"),
            );
            None
        }
    }
}

impl Config {
    /// Reads and checks a configuration. `learned`: host keys kept in state
    /// from earlier applies (pinned now). Returns `Ok(None)` when some value
    /// is not yet known (checks of known values still ran).
    ///
    /// # Errors
    /// Every problem found, each on its attribute.
    pub fn read(config: &Value, learned: &BTreeMap<String, String>) -> Result<Option<Config>, Diagnostics> {
        let mut ctx = Ctx {
            diags: Diagnostics::new(),
            unknown: false,
            config,
        };
        let ssh = config.get(attr::SSH).cloned().unwrap_or(Value::Null);
        let ssh_path = AttributePath::root(attr::SSH);
        let user = string(&mut ctx, &ssh, "user").unwrap_or_else(|| "core".to_owned());
        let ssh_port = port(&mut ctx, &ssh, 22, ssh_path.clone());
        let tofu = !matches!(field(&ssh, "trust_on_first_use"), Field::Bool(false));
        let connect_timeout = ctx.duration(&ssh, "connect_timeout", Duration::from_secs(300), ssh_path.clone());

        let key = string(&mut ctx, &ssh, "private_key");
        let key_wo = string(&mut ctx, &ssh, "private_key_wo");
        let passphrase = string(&mut ctx, &ssh, "private_key_passphrase");
        let agent = matches!(field(&ssh, "agent"), Field::Bool(true));
        let key_only_write_only = key.is_none() && key_wo.is_some();
        let auth = match (key, key_wo) {
            (Some(_), Some(_)) => {
                ctx.err(
                    ssh_path.clone().attr("private_key_wo"),
                    "Two private keys",
                    "Set private_key or private_key_wo, not both.",
                );
                None
            }
            (Some(k), None) | (None, Some(k)) => {
                let which = if matches!(field(&ssh, "private_key"), Field::Str(_)) {
                    "private_key"
                } else {
                    "private_key_wo"
                };
                match Auth::try_private_key(&k, passphrase.as_deref()) {
                    Ok(a) => Some(a),
                    Err(e) => {
                        ctx.err(
                            ssh_path.clone().attr(which),
                            "Unreadable SSH private key",
                            format!("{e}; give an OpenSSH, PKCS#8 or PKCS#1 PEM key (and private_key_passphrase if it is encrypted)"),
                        );
                        None
                    }
                }
            }
            (None, None) if agent => Some(Auth::Agent(None)),
            (None, None) => {
                if !ctx.unknown {
                    ctx.err(
                        ssh_path.clone(),
                        "No way to log in",
                        "Set ssh.private_key (or ssh.private_key_wo), or ssh.agent = true to use the SSH agent.",
                    );
                }
                None
            }
        };

        let pins: BTreeMap<String, String> = match ssh.get("host_keys").and_then(Value::as_map) {
            Some(m) => m
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect(),
            None => BTreeMap::new(),
        };

        let mut bastions = Vec::new();
        if let Some(list) = ssh.get("bastions").and_then(Value::as_list) {
            for (i, b) in list.iter().enumerate() {
                let path = ssh_path.clone().attr("bastions").index(i as i64);
                let Some(address) =
                    string(&mut ctx, b, "address").filter(|a| address_given(&mut ctx, a, path.clone().attr("address")))
                else {
                    continue;
                };
                let name = format!("bastion-{i}");
                let policy = match string(&mut ctx, b, "host_key").or_else(|| learned.get(&name).cloned()) {
                    Some(k) => pin(&mut ctx, &k, path.clone().attr("host_key")),
                    None if tofu => Some(HostKeyPolicy::TrustOnFirstUse),
                    None => {
                        ctx.err(
                            path.clone().attr("host_key"),
                            "No host key",
                            "Pin this bastion's host key, or set ssh.trust_on_first_use = true.",
                        );
                        None
                    }
                };
                let hop_user = string(&mut ctx, b, "user").unwrap_or_else(|| user.clone());
                let hop_port = port(&mut ctx, b, 22, path);
                if let (Some(auth), Some(policy)) = (auth.clone(), policy) {
                    bastions.push(HopSpec {
                        name,
                        address,
                        port: hop_port,
                        user: hop_user,
                        auth,
                        host_key: policy,
                    });
                }
            }
        }

        // Names already taken, for duplicates across both lists.
        let mut seen: BTreeMap<String, AttributePath> = BTreeMap::new();
        let hosts_of = |ctx: &mut Ctx,
                        seen: &mut BTreeMap<String, AttributePath>,
                        name: &str,
                        role: Role|
         -> Vec<Host> {
            let mut out = Vec::new();
            let Some(list) = ctx.config.get(name).and_then(Value::as_list).map(<[Value]>::to_vec) else {
                if ctx.config.get(name).is_some_and(Value::is_unknown) {
                    ctx.unknown = true;
                }
                return out;
            };
            for (i, h) in list.iter().enumerate() {
                let path = AttributePath::root(name).index(i as i64);
                if !h.is_known() {
                    ctx.unknown = true;
                }
                let host_name = string(ctx, h, "name").filter(|n| node_name(ctx, n, path.clone().attr("name")));
                if let Some(n) = &host_name {
                    if let Some(first) = seen.get(n) {
                        ctx.err(
                            path.clone().attr("name"),
                            "Duplicate host name",
                            format!("{n:?} is also the name at {first}; every host is one Kubernetes node with a name of its own"),
                        );
                    } else {
                        seen.insert(n.clone(), path.clone().attr("name"));
                    }
                }
                let address = string(ctx, h, "address").filter(|a| address_given(ctx, a, path.clone().attr("address")));
                let (Some(host_name), Some(address)) = (host_name, address) else {
                    continue;
                };
                let policy = match string(ctx, h, "host_key") {
                    Some(k) => pin(ctx, &k, path.clone().attr("host_key")),
                    None => match (pins.get(&host_name), learned.get(&host_name)) {
                        (Some(k), _) => pin(ctx, k, ssh_path.clone().attr("host_keys").key(&host_name)),
                        (None, Some(k)) => pin(ctx, k, path.clone().attr("host_key")),
                        (None, None) if tofu => Some(HostKeyPolicy::TrustOnFirstUse),
                        (None, None) => {
                            ctx.err(
                                path.clone().attr("host_key"),
                                "No host key",
                                format!("Pin {host_name}'s host key here or in ssh.host_keys, or set ssh.trust_on_first_use = true."),
                            );
                            None
                        }
                    },
                };
                let host_user = string(ctx, h, "user").unwrap_or_else(|| user.clone());
                let host_port = port(ctx, h, ssh_port, path);
                if let (Some(auth), Some(policy)) = (auth.clone(), policy) {
                    out.push(Host {
                        name: host_name.clone(),
                        role,
                        ssh: HostSpec {
                            host: HopSpec {
                                name: host_name,
                                address,
                                port: host_port,
                                user: host_user,
                                auth,
                                host_key: policy,
                            },
                            bastions: bastions.clone(),
                            connect_timeout,
                        },
                    });
                }
            }
            out
        };
        let controllers = hosts_of(&mut ctx, &mut seen, attr::CONTROLLERS, Role::Controller);
        let workers = hosts_of(&mut ctx, &mut seen, attr::WORKERS, Role::Worker);
        if ctx
            .config
            .get(attr::CONTROLLERS)
            .and_then(Value::as_list)
            .is_some_and(<[Value]>::is_empty)
        {
            ctx.err(
                AttributePath::root(attr::CONTROLLERS),
                "No controller",
                "List at least one controller: the first one runs the bootstrap control plane.",
            );
        }

        let access = match string(&mut ctx, config, attr::API_ACCESS).as_deref() {
            None | Some("tunnel") => ApiAccess::Tunnel,
            Some("direct") => ApiAccess::Direct {
                host: controllers
                    .first()
                    .map(|h| h.ssh.host.address.clone())
                    .unwrap_or_default(),
            },
            Some(other) => {
                ctx.err(
                    AttributePath::root(attr::API_ACCESS),
                    "Invalid api_access",
                    format!("{other:?}; write \"tunnel\" or \"direct\""),
                );
                ApiAccess::Tunnel
            }
        };
        match OnDestroy::of(config) {
            Err(other) => ctx.err(
                AttributePath::root(attr::ON_DESTROY),
                "Invalid on_destroy",
                format!("{other:?}; write \"keep\" or \"teardown\""),
            ),
            // Terraform sends no configuration on destroy, so a write-only key is gone then.
            Ok(OnDestroy::Teardown) if key_only_write_only && !agent => ctx.err(
                AttributePath::root(attr::ON_DESTROY),
                "Teardown cannot log in",
                "on_destroy = \"teardown\" logs in to the hosts when the resource is destroyed, but Terraform sends no \
                 configuration then and keeps no write-only value, so ssh.private_key_wo is gone: use ssh.private_key \
                 (kept in state as a sensitive value) or ssh.agent = true for a teardown, or keep on_destroy = \"keep\".",
            ),
            Ok(_) => {}
        }
        let t = config.get(attr::TIMEOUTS).cloned().unwrap_or(Value::Null);
        let tp = AttributePath::root(attr::TIMEOUTS);
        let create_timeout = ctx.duration(&t, "create", Duration::from_secs(20 * 60), tp.clone());
        let update_timeout = ctx.duration(&t, "update", Duration::from_secs(20 * 60), tp.clone());
        let delete_timeout = ctx.duration(&t, "delete", Duration::from_secs(5 * 60), tp);

        let p = config.get(attr::PATHS).cloned().unwrap_or(Value::Null);
        let d = RemotePaths::default();
        // The node contract's paths: the hosts' units and the rendered manifests use them, so an
        // override would make the provider deliver where nothing reads.
        for (name, fixed, field) in [
            (
                "kubelet_kubeconfig",
                &d.kubelet_kubeconfig,
                "node.bootstrap_kubeconfig_path",
            ),
            ("ca_certificate", &d.ca_certificate, "node.ca_path"),
            ("static_pod_dir", &d.static_pod_dir, "node.static_pod_path"),
            (
                "bootstrap_secrets_dir",
                &d.bootstrap_secrets_dir,
                "the bootstrap manifests' hostPath",
            ),
            ("etcd_tls_dir", &d.etcd_tls_dir, "node.etcd_env"),
        ] {
            match string(&mut ctx, &p, name) {
                Some(s) if s.trim_end_matches('/') == fixed.as_str() => {}
                Some(s) => ctx.err(
                    AttributePath::root(attr::PATHS).attr(name),
                    "Path fixed by the node contract",
                    format!(
                        "{s:?} differs from {fixed:?}, where the hosts' units and the rendered manifests read it ({field} \
                         of selfhosted_cluster_assets): remove paths.{name}, and have the hosts follow the contract"
                    ),
                ),
                None => {}
            }
        }
        let state_dir = match string(&mut ctx, &p, "state_dir") {
            Some(s) if s.starts_with('/') && s.len() > 1 => s,
            Some(s) => {
                ctx.err(
                    AttributePath::root(attr::PATHS).attr("state_dir"),
                    "Invalid path",
                    format!("{s:?} is not an absolute folder; write e.g. {:?}", d.state_dir),
                );
                d.state_dir.clone()
            }
            None => d.state_dir.clone(),
        };
        let paths = RemotePaths { state_dir, ..d };

        let assets: BTreeMap<String, String> = match config.get(attr::ASSETS) {
            Some(v) if v.is_known() => v
                .as_map()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
            _ => {
                ctx.unknown = true;
                BTreeMap::new()
            }
        };
        if !ctx.unknown && !assets.contains_key("tls/ca.crt") {
            ctx.err(
                AttributePath::root(attr::ASSETS),
                "Not cluster assets",
                "Pass selfhosted_cluster_assets.<name>.assets unchanged.",
            );
        }

        if ctx.diags.has_errors() {
            return Err(ctx.diags);
        }
        if ctx.unknown {
            return Ok(None);
        }
        // Names, addresses and logins were checked above: what is left is a list the
        // inventory takes.
        let inventory = Inventory::try_new(controllers, workers).map_err(|e| {
            Diagnostics::from(
                Diagnostic::error("Invalid hosts", e.to_string()).at(AttributePath::root(attr::CONTROLLERS)),
            )
        })?;
        Ok(Some(Config {
            inventory,
            assets,
            access,
            paths,
            create_timeout,
            update_timeout,
            delete_timeout,
        }))
    }
}

/// A digest of the assets (what the hosts and the cluster should hold).
pub fn assets_digest(assets: &BTreeMap<String, String>) -> String {
    crate::asset_dir::digest(assets.iter().map(|(k, v)| (k.as_str(), v.as_bytes())))
}
