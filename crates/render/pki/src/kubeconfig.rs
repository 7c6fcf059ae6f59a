//! Kubeconfig files, rendered block-style with every certificate on one line
//! (typhoon's kubelet unit greps `certificate-authority-data` and takes the
//! second field), deterministically: same inputs, same bytes.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// How the user of a kubeconfig authenticates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credential<'a> {
    /// Client certificate and key (PEM).
    ClientCert {
        /// Certificate PEM.
        cert_pem: &'a str,
        /// Key PEM.
        key_pem: &'a str,
    },
    /// Bearer token (the kubelet bootstrap token).
    Token(&'a str),
}

/// One kubeconfig: a single cluster, user and context.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kubeconfig<'a> {
    /// Cluster entry name.
    pub cluster: &'a str,
    /// `https://host:port`.
    pub server: &'a str,
    /// CA certificate PEM.
    pub ca_pem: &'a str,
    /// User entry name.
    pub user: &'a str,
    /// The user's credential.
    pub credential: Credential<'a>,
    /// Context entry name (also the current context).
    pub context: &'a str,
}

/// A YAML double-quoted scalar (names may look like numbers or booleans).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Kubeconfig<'_> {
    /// The kubeconfig YAML.
    pub(crate) fn render(&self) -> String {
        let b64 = |s: &str| STANDARD.encode(s.as_bytes());
        let user = match self.credential {
            Credential::ClientCert { cert_pem, key_pem } => format!(
                "    client-certificate-data: {}\n    client-key-data: {}\n",
                b64(cert_pem),
                b64(key_pem)
            ),
            Credential::Token(token) => format!("    token: {}\n", quoted(token)),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {cluster}\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user_name}\n  user:\n{user}contexts:\n- name: {context}\n  context:\n    cluster: {cluster}\n    user: {user_name}\ncurrent-context: {context}\n",
            cluster = quoted(self.cluster),
            server = quoted(self.server),
            ca = b64(self.ca_pem),
            user_name = quoted(self.user),
            context = quoted(self.context),
        )
    }
}
