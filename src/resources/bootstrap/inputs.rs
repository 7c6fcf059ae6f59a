//! Configuration of `selfhosted_bootstrap` → the pivot's inventory and
//! parameters, with every problem reported on the attribute to fix.

use std::collections::BTreeMap;
use std::time::Duration;

use selfhosted_pivot::procedure::ApiAccess;
use selfhosted_pivot::{Host, Inventory, RemotePaths, Role};
use selfhosted_protocol::diagnostics::{AttributePath, Diagnostic, Diagnostics};
use selfhosted_protocol::value::Value;
use selfhosted_transport::{Auth, AuthorizedKeys, AuthorizedKeysError, HopSpec, HostKeyPolicy, HostSpec};

use super::schema::attr;
use crate::resources::config::string_entries;

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
    /// A local folder that also keeps each etcd snapshot.
    pub etcd_snapshot_dir: Option<std::path::PathBuf>,
    /// `kubelet_max_unavailable`: workers whose kubelets move at once.
    pub kubelet_max_unavailable: usize,
}

struct Ctx<'a> {
    diags: Diagnostics,
    unknown: bool,
    config: &'a Value,
    /// Host keys kept in state from earlier applies.
    learned: &'a BTreeMap<String, String>,
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
        Field::Absent => default,
        // the schema's type is a number: a fraction, or one beyond i64
        Field::Str(_) | Field::Bool(_) | Field::Other => {
            ctx.err(
                path.attr("port"),
                "Invalid port",
                "not a whole number; write a TCP port, 1 to 65535",
            );
            default
        }
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
            learned,
        };
        // Order matters: it is the diagnostics' order, and some checks skip when anything read
        // before them was unknown.
        let ssh = block(config, attr::SSH);
        let login = ssh_login(&mut ctx, &ssh);
        let bastions = bastions(&mut ctx, &ssh, &login);
        let authorized_keys = authorized_keys(&mut ctx, &ssh, &login);
        let (controllers, workers) = hosts(&mut ctx, &login, &bastions);
        let access = api_access(&mut ctx, &controllers);
        check_on_destroy(&mut ctx, &login);
        check_on_refresh(&mut ctx, &login);
        let (create_timeout, update_timeout, delete_timeout) = timeouts(&mut ctx);
        let paths = paths(&mut ctx);
        let assets = assets(&mut ctx);
        let etcd_snapshot_dir = etcd_snapshot_dir(&mut ctx);
        let kubelet_max_unavailable = kubelet_max_unavailable(&mut ctx);

        if ctx.diags.has_errors() {
            return Err(ctx.diags);
        }
        if ctx.unknown {
            return Ok(None);
        }
        // Names, addresses and logins were checked above: what is left is a list the
        // inventory takes.
        let inventory = Inventory::try_new(controllers, workers)
            .map_err(|e| {
                Diagnostics::from(
                    Diagnostic::error("Invalid hosts", e.to_string()).at(AttributePath::root(attr::CONTROLLERS)),
                )
            })?
            .with_authorized_keys(authorized_keys);
        Ok(Some(Config {
            inventory,
            assets,
            access,
            paths,
            create_timeout,
            update_timeout,
            delete_timeout,
            etcd_snapshot_dir,
            kubelet_max_unavailable,
        }))
    }
}

/// `etcd_snapshot_dir`: any folder name (relative ones are Terraform's working folder's).
fn etcd_snapshot_dir(ctx: &mut Ctx) -> Option<std::path::PathBuf> {
    let dir = string(ctx, ctx.config, attr::ETCD_SNAPSHOT_DIR)?;
    if dir.trim().is_empty() || dir.contains('\0') {
        ctx.err(
            AttributePath::root(attr::ETCD_SNAPSHOT_DIR),
            "Invalid folder",
            format!("{dir:?} is not a folder name; write e.g. \"${{path.root}}/etcd-snapshots\", or leave it out to keep snapshots only on the controllers"),
        );
        return None;
    }
    Some(dir.into())
}

/// `kubelet_max_unavailable`: a whole number from 1; 1 when left out.
fn kubelet_max_unavailable(ctx: &mut Ctx) -> usize {
    let path = AttributePath::root(attr::KUBELET_MAX_UNAVAILABLE);
    let bad = |ctx: &mut Ctx, what: String| {
        ctx.err(
            path.clone(),
            "Invalid kubelet_max_unavailable",
            format!("{what}; write how many workers may be cordoned at once, 1 or more (1 when left out)"),
        );
        1
    };
    match field(ctx.config, attr::KUBELET_MAX_UNAVAILABLE) {
        Field::Int(n) => match usize::try_from(n) {
            Ok(n) if n >= 1 => n,
            _ => bad(ctx, format!("{n} is not 1 or more")),
        },
        Field::Unknown => {
            ctx.unknown = true;
            1
        }
        Field::Absent => 1,
        Field::Str(_) | Field::Bool(_) | Field::Other => bad(ctx, "not a whole number".to_owned()),
    }
}

/// A nested block, null when absent.
fn block(config: &Value, name: &str) -> Value {
    config.get(name).cloned().unwrap_or(Value::Null)
}

/// What the `ssh` block gives every host and bastion.
struct Login {
    user: String,
    port: u16,
    tofu: bool,
    connect_timeout: Duration,
    /// `None` after an error, or while a key is unknown.
    auth: Option<Auth>,
    /// Only `private_key_wo` logs in: Terraform keeps no write-only value for a destroy.
    gone_on_destroy: bool,
    /// `ssh.host_keys`.
    pins: BTreeMap<String, String>,
}

fn ssh_login(ctx: &mut Ctx, ssh: &Value) -> Login {
    let path = AttributePath::root(attr::SSH);
    let user = string(ctx, ssh, "user").unwrap_or_else(|| "core".to_owned());
    let ssh_port = port(ctx, ssh, 22, path.clone());
    let tofu = !matches!(field(ssh, "trust_on_first_use"), Field::Bool(false));
    let connect_timeout = ctx.duration(ssh, "connect_timeout", Duration::from_secs(300), path.clone());
    let (auth, gone_on_destroy) = ssh_auth(ctx, ssh, path);
    Login {
        user,
        port: ssh_port,
        tofu,
        connect_timeout,
        auth,
        gone_on_destroy,
        pins: ssh.get("host_keys").and_then(string_entries).unwrap_or_default(),
    }
}

/// The one login every hop uses, and whether it is gone on destroy.
fn ssh_auth(ctx: &mut Ctx, ssh: &Value, ssh_path: AttributePath) -> (Option<Auth>, bool) {
    let key = string(ctx, ssh, "private_key");
    let key_wo = string(ctx, ssh, "private_key_wo");
    let passphrase = string(ctx, ssh, "private_key_passphrase");
    let agent = matches!(field(ssh, "agent"), Field::Bool(true));
    let gone_on_destroy = key.is_none() && key_wo.is_some() && !agent;
    let auth = match (key, key_wo) {
        (Some(_), Some(_)) => {
            ctx.err(
                ssh_path.attr("private_key_wo"),
                "Two private keys",
                "Set private_key or private_key_wo, not both.",
            );
            None
        }
        (Some(k), None) | (None, Some(k)) => {
            let which = if matches!(field(ssh, "private_key"), Field::Str(_)) {
                "private_key"
            } else {
                "private_key_wo"
            };
            match Auth::try_private_key(&k, passphrase.as_deref()) {
                Ok(a) => Some(a),
                Err(e) => {
                    ctx.err(
                        ssh_path.attr(which),
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
                    ssh_path,
                    "No way to log in",
                    "Set ssh.private_key (or ssh.private_key_wo), or ssh.agent = true to use the SSH agent.",
                );
            }
            None
        }
    };
    (auth, gone_on_destroy)
}

/// `ssh.authorized_keys`: every line a public key, and the key the provider logs in with among
/// them (else the apply that writes them would be its last).
fn authorized_keys(ctx: &mut Ctx, ssh: &Value, login: &Login) -> Option<AuthorizedKeys> {
    let path = AttributePath::root(attr::SSH).attr("authorized_keys");
    let list = match ssh.get("authorized_keys") {
        None => return None,
        Some(v) if v.is_null() => return None,
        Some(v) if !v.is_known() => {
            ctx.unknown = true;
            return None;
        }
        Some(v) => v.as_list().unwrap_or_default(),
    };
    let mut lines = Vec::new();
    for (i, item) in list.iter().enumerate() {
        match item.as_str() {
            Some(line) => lines.push(line.to_owned()),
            None if !item.is_known() => {
                ctx.unknown = true;
                return None;
            }
            None => {
                ctx.err(
                    path.index(i as i64),
                    "Invalid authorized keys",
                    "a null entry; write one `authorized_keys` line, e.g. `ssh-ed25519 AAAAC3Nza… you@laptop`, or drop it",
                );
                return None;
            }
        }
    }
    let keys = match AuthorizedKeys::parse(&lines) {
        Ok(keys) => keys,
        Err(e) => {
            let at = match &e {
                AuthorizedKeysError::NotAKey { index, .. } => path.index(*index as i64),
                AuthorizedKeysError::Empty => path,
            };
            ctx.err(at, "Invalid authorized keys", e.to_string());
            return None;
        }
    };
    if let Some(public) = login.auth.as_ref().and_then(Auth::public_key) {
        let line = public.to_openssh().unwrap_or_default();
        match keys.options_for(public) {
            None => {
                ctx.err(
                    path,
                    "The login key is not listed",
                    format!(
                        "the public half of ssh.private_key is not in the list, so after this apply the provider could not \
                         log in again; add {line:?}, and drop it only once ssh.private_key is the new key (docs: rotating \
                         the SSH key)"
                    ),
                );
                return None;
            }
            Some(options) if !options.is_empty() => {
                ctx.err(
                    path,
                    "The login key is restricted",
                    format!(
                        "the line of ssh.private_key's public half carries options ({options}): the provider opens \
                         channels to each controller's apiserver and etcd, which `restrict` or `no-port-forwarding` \
                         refuse, and `from=` or `command=` may shut it out; list it as {line:?}"
                    ),
                );
                return None;
            }
            Some(_) => {}
        }
    }
    Some(keys)
}

/// Bastions and hosts take their defaults from different places.
#[derive(Clone, Copy)]
enum Hop {
    Bastion,
    Host,
}

/// `ssh.bastions`, in the order every host is reached through them.
fn bastions(ctx: &mut Ctx, ssh: &Value, login: &Login) -> Vec<HopSpec> {
    let list = ssh.get("bastions").and_then(Value::as_list).unwrap_or_default();
    list.iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let path = AttributePath::root(attr::SSH).attr("bastions").index(i as i64);
            let address = string(ctx, b, "address").filter(|a| address_given(ctx, a, path.clone().attr("address")))?;
            hop(ctx, b, Hop::Bastion, format!("bastion-{i}"), address, path, login)
        })
        .collect()
}

/// `controllers` and `workers`: one node name may appear once across both.
fn hosts(ctx: &mut Ctx, login: &Login, bastions: &[HopSpec]) -> (Vec<Host>, Vec<Host>) {
    let mut seen = BTreeMap::new();
    let controllers = host_list(ctx, &mut seen, attr::CONTROLLERS, Role::Controller, login, bastions);
    let workers = host_list(ctx, &mut seen, attr::WORKERS, Role::Worker, login, bastions);
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
    (controllers, workers)
}

/// One host list; `seen`: the names taken so far, with where.
fn host_list(
    ctx: &mut Ctx,
    seen: &mut BTreeMap<String, AttributePath>,
    name: &str,
    role: Role,
    login: &Login,
    bastions: &[HopSpec],
) -> Vec<Host> {
    let config = ctx.config;
    let Some(list) = config.get(name).and_then(Value::as_list) else {
        if config.get(name).is_some_and(Value::is_unknown) {
            ctx.unknown = true;
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, h) in list.iter().enumerate() {
        if let Some(host) = host(ctx, seen, h, AttributePath::root(name).index(i as i64), login) {
            out.push(Host {
                name: host.name.clone(),
                role,
                ssh: HostSpec {
                    host,
                    bastions: bastions.to_vec(),
                    connect_timeout: login.connect_timeout,
                },
            });
        }
    }
    out
}

/// One host's own hop; its name is a node name, unique across both lists.
fn host(
    ctx: &mut Ctx,
    seen: &mut BTreeMap<String, AttributePath>,
    h: &Value,
    path: AttributePath,
    login: &Login,
) -> Option<HopSpec> {
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
    hop(ctx, h, Hop::Host, host_name?, address?, path, login)
}

/// A bastion or host once its name and address are read: host key, user and port.
fn hop(
    ctx: &mut Ctx,
    obj: &Value,
    kind: Hop,
    name: String,
    address: String,
    path: AttributePath,
    login: &Login,
) -> Option<HopSpec> {
    let host_key = host_key(ctx, obj, kind, &name, &path, login);
    let user = string(ctx, obj, "user").unwrap_or_else(|| login.user.clone());
    let default_port = match kind {
        Hop::Bastion => 22,
        Hop::Host => login.port,
    };
    let port = port(ctx, obj, default_port, path);
    Some(HopSpec {
        name,
        address,
        port,
        user,
        auth: login.auth.clone()?,
        host_key: host_key?,
    })
}

/// The first given of: the hop's own `host_key`, its `ssh.host_keys` entry (hosts only),
/// the key learned on an earlier apply; else trust on first use where allowed.
fn host_key(
    ctx: &mut Ctx,
    obj: &Value,
    kind: Hop,
    name: &str,
    path: &AttributePath,
    login: &Login,
) -> Option<HostKeyPolicy> {
    let learned = ctx.learned;
    let own = path.clone().attr("host_key");
    if let Some(k) = string(ctx, obj, "host_key") {
        return pin(ctx, &k, own);
    }
    let pinned = match kind {
        Hop::Bastion => None,
        Hop::Host => login.pins.get(name),
    };
    if let Some(k) = pinned {
        return pin(ctx, k, AttributePath::root(attr::SSH).attr("host_keys").key(name));
    }
    if let Some(k) = learned.get(name) {
        return pin(ctx, k, own);
    }
    if login.tofu {
        return Some(HostKeyPolicy::TrustOnFirstUse);
    }
    let detail = match kind {
        Hop::Bastion => "Pin this bastion's host key, or set ssh.trust_on_first_use = true.".to_owned(),
        Hop::Host => {
            format!("Pin {name}'s host key here or in ssh.host_keys, or set ssh.trust_on_first_use = true.")
        }
    };
    ctx.err(own, "No host key", detail);
    None
}

/// `direct` dials the first controller's SSH address.
fn api_access(ctx: &mut Ctx, controllers: &[Host]) -> ApiAccess {
    let config = ctx.config;
    match string(ctx, config, attr::API_ACCESS).as_deref() {
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
    }
}

fn check_on_destroy(ctx: &mut Ctx, login: &Login) {
    match OnDestroy::of(ctx.config) {
        Err(other) => ctx.err(
            AttributePath::root(attr::ON_DESTROY),
            "Invalid on_destroy",
            format!("{other:?}; write \"keep\" or \"teardown\""),
        ),
        // Terraform sends no configuration on destroy, so a write-only key is gone then.
        Ok(OnDestroy::Teardown) if login.gone_on_destroy => ctx.err(
            AttributePath::root(attr::ON_DESTROY),
            "Teardown cannot log in",
            "on_destroy = \"teardown\" logs in to the hosts when the resource is destroyed, but Terraform sends no \
             configuration then and keeps no write-only value, so ssh.private_key_wo is gone: use ssh.private_key \
             (kept in state as a sensitive value) or ssh.agent = true for a teardown, or keep on_destroy = \"keep\".",
        ),
        Ok(_) => {}
    }
}

/// `check_hosts_on_refresh`, which a write-only key cannot serve: Terraform sends no
/// configuration to a refresh, only the state, which keeps no write-only value.
fn check_on_refresh(ctx: &mut Ctx, login: &Login) {
    let on = matches!(field(ctx.config, attr::CHECK_HOSTS_ON_REFRESH), Field::Bool(true));
    if on && login.gone_on_destroy {
        ctx.err(
            AttributePath::root(attr::CHECK_HOSTS_ON_REFRESH),
            "Refresh cannot log in",
            "check_hosts_on_refresh logs in to the hosts at refresh, when Terraform sends only the state, which keeps no \
             write-only value, so ssh.private_key_wo is gone then: use ssh.private_key (kept in state as a sensitive \
             value) or ssh.agent = true, or leave check_hosts_on_refresh out.",
        );
    }
}

/// Create, update and delete deadlines.
fn timeouts(ctx: &mut Ctx) -> (Duration, Duration, Duration) {
    let t = block(ctx.config, attr::TIMEOUTS);
    let tp = AttributePath::root(attr::TIMEOUTS);
    let create = ctx.duration(&t, "create", Duration::from_secs(20 * 60), tp.clone());
    let update = ctx.duration(&t, "update", Duration::from_secs(20 * 60), tp.clone());
    let delete = ctx.duration(&t, "delete", Duration::from_secs(5 * 60), tp);
    (create, update, delete)
}

/// Only `state_dir` may move; the other paths are the node contract's.
fn paths(ctx: &mut Ctx) -> RemotePaths {
    let p = block(ctx.config, attr::PATHS);
    let d = RemotePaths::default();
    check_contract_paths(ctx, &p, &d);
    let state_dir = match string(ctx, &p, "state_dir") {
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
    RemotePaths { state_dir, ..d }
}

/// The hosts' units and the rendered manifests use the contract's paths, so an override
/// would make the provider deliver where nothing reads.
fn check_contract_paths(ctx: &mut Ctx, p: &Value, d: &RemotePaths) {
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
        match string(ctx, p, name) {
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
}

/// Read last: it is checked only when nothing at all was unknown.
fn assets(ctx: &mut Ctx) -> BTreeMap<String, String> {
    let assets = match ctx.config.get(attr::ASSETS) {
        Some(v) if v.is_known() => string_entries(v).unwrap_or_default(),
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
    assets
}

/// A digest of the assets (what the hosts and the cluster should hold).
pub fn assets_digest(assets: &BTreeMap<String, String>) -> String {
    crate::asset_dir::digest(assets.iter().map(|(k, v)| (k.as_str(), v.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(tofu: bool, pins: BTreeMap<String, String>) -> Login {
        Login {
            user: "core".to_owned(),
            port: 22,
            tofu,
            connect_timeout: Duration::ZERO,
            auth: None,
            gone_on_destroy: false,
            pins,
        }
    }

    #[test]
    fn a_host_key_comes_from_the_first_source_given() {
        let learned = BTreeMap::from([("n".to_owned(), "SHA256:learned".to_owned())]);
        let config = Value::Null;
        let mut ctx = Ctx {
            diags: Diagnostics::new(),
            unknown: false,
            config: &config,
            learned: &learned,
        };
        let mut login = login(false, BTreeMap::from([("n".to_owned(), "SHA256:pinned".to_owned())]));
        let path = AttributePath::root(attr::CONTROLLERS).index(0);
        let own = Value::object([("host_key", Value::from("SHA256:own"))]);
        let key = |ctx: &mut Ctx, obj: &Value, kind, name, login: &Login| {
            format!("{:?}", host_key(ctx, obj, kind, name, &path, login))
        };
        assert!(key(&mut ctx, &own, Hop::Host, "n", &login).contains("SHA256:own"));
        assert!(key(&mut ctx, &Value::Null, Hop::Host, "n", &login).contains("SHA256:pinned"));
        // ssh.host_keys names hosts only.
        assert!(key(&mut ctx, &Value::Null, Hop::Bastion, "n", &login).contains("SHA256:learned"));
        assert!(!ctx.diags.has_errors());
        assert_eq!(key(&mut ctx, &Value::Null, Hop::Host, "m", &login), "None");
        let text = format!("{:?}", ctx.diags);
        assert!(
            text.contains("No host key: controllers[0].host_key") && text.contains("Pin m's host key"),
            "{text}"
        );
        login.tofu = true;
        assert_eq!(
            key(&mut ctx, &Value::Null, Hop::Bastion, "m", &login),
            "Some(TrustOnFirstUse)"
        );
    }
}
