//! The kubelet bootstrap token: `<id>.<secret>`, 6 and 16 characters of
//! `[a-z0-9]` (the format Kubernetes' bootstrap-token authenticator accepts).

use rand::Rng;

const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh random token from the OS-seeded CSPRNG.
pub(crate) fn generate() -> String {
    let mut rng = rand::rng();
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect()
    };
    let id = pick(6);
    let secret = pick(16);
    format!("{id}.{secret}")
}

/// Whether `t` is a well-formed bootstrap token.
pub fn is_valid(t: &str) -> bool {
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    matches!(t.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

/// The token id and secret (`token-id`, `token-secret` of the
/// `bootstrap-token-<id>` Secret in kube-system).
pub fn split(t: &str) -> Option<(&str, &str)> {
    if is_valid(t) {
        t.split_once('.')
    } else {
        None
    }
}
