//! Host-key verification: pinned keys (known_hosts lines, bare keys or `SHA256:` fingerprints)
//! or trust on first use, which hands the learned keys back so the caller can keep them in state.
//! A key is never accepted without one of these policies saying so.

use std::sync::{Arc, Mutex};

use russh::keys::{HashAlg, PublicKey};

/// Why a host key was not accepted, or a pin could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// A pin was neither `SHA256:<base64>`, `<type> <base64>` nor a known_hosts line.
    #[error("cannot read pinned host key {input:?}: {reason}")]
    ParsePin {
        /// The text given as a pin.
        input: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The host presented a key none of the pins match.
    #[error(
        "host key of {host} ({address}) does not match: expected {}, presented {presented}",
        expected.join(" or ")
    )]
    Mismatch {
        /// Host name as configured.
        host: String,
        /// `address:port` dialled.
        address: String,
        /// Fingerprints (`SHA256:…`) of the pinned keys.
        expected: Vec<String>,
        /// Fingerprint of the key the host presented.
        presented: String,
    },
}

/// One pinned host key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinnedKey {
    /// The full public key (compared by key data, the comment is ignored).
    Key(PublicKey),
    /// An OpenSSH SHA-256 fingerprint, `SHA256:` followed by unpadded base64.
    Fingerprint(String),
}

impl PinnedKey {
    /// Reads a pin from `SHA256:…`, `ssh-ed25519 AAAA… [comment]` or a known_hosts line
    /// (`host[,host…] ssh-ed25519 AAAA… [comment]`; host patterns are not checked, the pin
    /// belongs to the host it is configured for).
    ///
    /// # Errors
    /// [`HostKeyError::ParsePin`] when the text holds no usable key.
    pub fn try_parse(text: &str) -> Result<Self, HostKeyError> {
        let text = text.trim();
        let fail = |reason: &str| HostKeyError::ParsePin {
            input: text.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(b64) = text.strip_prefix("SHA256:") {
            let ok = !b64.is_empty()
                && b64
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '=');
            if !ok {
                return Err(fail("a SHA256 fingerprint is base64 after `SHA256:`"));
            }
            return Ok(PinnedKey::Fingerprint(format!("SHA256:{}", b64.trim_end_matches('='))));
        }
        if text.starts_with('@') {
            return Err(fail(
                "known_hosts markers (@cert-authority, @revoked) are not supported; pin the host key",
            ));
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        // `<type> <base64>` possibly after one host-pattern field.
        for start in 0..fields.len().min(2) {
            if let (Some(kind), Some(data)) = (fields.get(start), fields.get(start + 1)) {
                if looks_like_key_type(kind) {
                    return PublicKey::from_openssh(&format!("{kind} {data}"))
                        .map(PinnedKey::Key)
                        .map_err(|e| fail(&e.to_string()));
                }
            }
        }
        Err(fail("expected `SHA256:…`, `<key type> <base64>` or a known_hosts line"))
    }

    /// The pin's SHA-256 fingerprint, as OpenSSH prints it.
    pub fn fingerprint(&self) -> String {
        match self {
            PinnedKey::Key(k) => fingerprint(k),
            PinnedKey::Fingerprint(f) => f.clone(),
        }
    }

    fn matches(&self, presented: &PublicKey) -> bool {
        match self {
            PinnedKey::Key(k) => k.key_data() == presented.key_data(),
            PinnedKey::Fingerprint(f) => *f == fingerprint(presented),
        }
    }
}

fn looks_like_key_type(s: &str) -> bool {
    s.starts_with("ssh-") || s.starts_with("ecdsa-sha2-") || s.starts_with("sk-")
}

/// How a host's key is verified.
#[derive(Clone, Debug)]
pub enum HostKeyPolicy {
    /// Accept only a key matching one of these pins.
    Pinned(Vec<PinnedKey>),
    /// Accept the key the host presents and report it (see [`LearnedHostKey`]), so the caller
    /// can pin it from then on.
    TrustOnFirstUse,
}

impl HostKeyPolicy {
    /// Pins every key found in `lines` (known_hosts text, bare keys or fingerprints, one per
    /// line; blank lines and `#` comments skipped).
    ///
    /// # Errors
    /// [`HostKeyError::ParsePin`] for the first unreadable line, or when there is no pin at all.
    pub fn try_pinned<S: AsRef<str>>(lines: &[S]) -> Result<Self, HostKeyError> {
        let mut pins = Vec::new();
        for text in lines {
            for line in text.as_ref().lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                pins.push(PinnedKey::try_parse(line)?);
            }
        }
        if pins.is_empty() {
            return Err(HostKeyError::ParsePin {
                input: String::new(),
                reason: "no pinned key given".to_owned(),
            });
        }
        Ok(HostKeyPolicy::Pinned(pins))
    }
}

/// A host key accepted under trust on first use, to be kept and pinned later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearnedHostKey {
    /// Host (or bastion) name as configured.
    pub host: String,
    /// `address` as dialled (a known_hosts host field is built from it and the port).
    pub address: String,
    /// Port dialled.
    pub port: u16,
    /// The key in OpenSSH form, `ssh-ed25519 AAAA…`.
    pub public_key: String,
    /// `SHA256:…` fingerprint.
    pub fingerprint: String,
}

impl LearnedHostKey {
    /// The key as a known_hosts line (`[addr]:port` when the port is not 22).
    pub fn known_hosts_line(&self) -> String {
        if self.port == 22 {
            format!("{} {}", self.address, self.public_key)
        } else {
            format!("[{}]:{} {}", self.address, self.port, self.public_key)
        }
    }
}

/// Fingerprint of a key as OpenSSH prints it (`SHA256:…`).
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Applies a policy during one handshake and remembers what the host presented, so a refusal
/// can be explained and a first-use key returned.
#[derive(Clone, Debug)]
pub(crate) struct Verifier {
    policy: HostKeyPolicy,
    presented: Arc<Mutex<Option<PublicKey>>>,
}

impl Verifier {
    pub(crate) fn new(policy: HostKeyPolicy) -> Self {
        Self {
            policy,
            presented: Arc::new(Mutex::new(None)),
        }
    }

    /// Records the key and says whether the policy accepts it.
    pub(crate) fn check(&self, key: &PublicKey) -> bool {
        if let Ok(mut slot) = self.presented.lock() {
            *slot = Some(key.clone());
        }
        match &self.policy {
            HostKeyPolicy::TrustOnFirstUse => true,
            HostKeyPolicy::Pinned(pins) => pins.iter().any(|p| p.matches(key)),
        }
    }

    pub(crate) fn presented(&self) -> Option<PublicKey> {
        self.presented.lock().ok().and_then(|k| k.clone())
    }

    pub(crate) fn is_first_use(&self) -> bool {
        matches!(self.policy, HostKeyPolicy::TrustOnFirstUse)
    }

    /// The refusal, if the handshake failed because the key did not match.
    pub(crate) fn mismatch(&self, host: &str, address: &str) -> Option<HostKeyError> {
        let HostKeyPolicy::Pinned(pins) = &self.policy else {
            return None;
        };
        let presented = self.presented()?;
        if pins.iter().any(|p| p.matches(&presented)) {
            return None;
        }
        Some(HostKeyError::Mismatch {
            host: host.to_owned(),
            address: address.to_owned(),
            expected: pins.iter().map(PinnedKey::fingerprint).collect(),
            presented: fingerprint(&presented),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    #[test]
    fn pins_parse_from_all_forms() {
        let bare = PinnedKey::try_parse(KEY).unwrap();
        let line = PinnedKey::try_parse(&format!("10.0.0.1,[h]:2222 {KEY} comment x")).unwrap();
        assert_eq!(bare, line);
        let fp = bare.fingerprint();
        assert!(fp.starts_with("SHA256:"), "{fp}");
        let by_fp = PinnedKey::try_parse(&fp).unwrap();
        let key = PublicKey::from_openssh(KEY).unwrap();
        assert!(by_fp.matches(&key));
        assert!(bare.matches(&key));
        assert!(PinnedKey::try_parse("SHA256:").is_err());
        assert!(PinnedKey::try_parse("nonsense").is_err());
        assert!(PinnedKey::try_parse(&format!("@revoked * {KEY}")).is_err());
    }

    #[test]
    fn mismatch_names_both_fingerprints() {
        let other = PinnedKey::Fingerprint("SHA256:AAAA".into());
        let v = Verifier::new(HostKeyPolicy::Pinned(vec![other]));
        let key = PublicKey::from_openssh(KEY).unwrap();
        assert!(!v.check(&key));
        let msg = v.mismatch("h1", "10.0.0.1:22").unwrap().to_string();
        assert!(msg.contains("SHA256:AAAA") && msg.contains(&fingerprint(&key)), "{msg}");
    }
}
