//! The public keys that may log in as a host's SSH user, kept by the provider so that a key can
//! be rotated on machines whose OS config (Ignition user data) is applied only at first boot.

use std::fmt;

use russh::keys::ssh_key::authorized_keys::Entry;
use russh::keys::PublicKey;

/// Why a list of authorized keys cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizedKeysError {
    /// An entry is not one `authorized_keys` line.
    #[error("entry {index} is not an OpenSSH public key ({reason}); write one `authorized_keys` line, e.g. `ssh-ed25519 AAAAC3Nza… you@laptop`")]
    NotAKey {
        /// Its place in the list.
        index: usize,
        /// The parser's reason.
        reason: String,
    },
    /// No key at all: nobody could log in again.
    #[error("the list is empty: no key could log in again, not the provider's nor yours; list at least the public half of the key the provider logs in with")]
    Empty,
}

/// A checked, non-empty set of `authorized_keys` lines (options allowed, one key per line).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizedKeys {
    entries: Vec<Entry>,
    /// The lines as given, written as they are.
    lines: Vec<String>,
}

impl fmt::Debug for AuthorizedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prints: Vec<String> = self
            .entries
            .iter()
            .map(|e| crate::host_keys::fingerprint(e.public_key()))
            .collect();
        f.debug_tuple("AuthorizedKeys").field(&prints).finish()
    }
}

impl AuthorizedKeys {
    /// Checks every line.
    ///
    /// # Errors
    /// [`AuthorizedKeysError`] naming the first bad entry, or an empty list.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Result<Self, AuthorizedKeysError> {
        let entries = lines
            .iter()
            .enumerate()
            .map(|(index, line)| {
                let line = line.as_ref().trim();
                let bad = |reason: String| AuthorizedKeysError::NotAKey { index, reason };
                if line.contains(['\n', '\r']) {
                    return Err(bad("it holds a line break".to_owned()));
                }
                entry(line).map(|e| (e, line.to_owned())).map_err(bad)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if entries.is_empty() {
            return Err(AuthorizedKeysError::Empty);
        }
        let (entries, lines) = entries.into_iter().unzip();
        Ok(Self { entries, lines })
    }

    /// Whether `key` may log in (options aside, comments ignored).
    pub fn admits(&self, key: &PublicKey) -> bool {
        self.options_for(key).is_some()
    }

    /// The options of `key`'s least restricted line (empty: none); `None` when no line lists
    /// it. The provider's own login needs a line without options: it opens channels to the
    /// apiserver and etcd, which `restrict` or `no-port-forwarding` refuse, and `from=` or
    /// `command=` may shut it out.
    pub fn options_for(&self, key: &PublicKey) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| e.public_key().key_data() == key.key_data())
            .map(|e| e.config_opts().as_str())
            .min_by_key(|o| o.len())
    }

    /// The file's content: one line per key, as given (options kept).
    pub fn file(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// One `authorized_keys` line. The parser takes a line of two spaces or fewer for a key and its
/// comment; `restrict ssh-ed25519 AAAA…` (options, no comment) is read again with a comment
/// added, as sshd reads it.
fn entry(line: &str) -> Result<Entry, String> {
    line.parse::<Entry>().or_else(|first| {
        (line.matches(' ').count() <= 2)
            .then(|| format!("{line} comment").parse::<Entry>().ok())
            .flatten()
            .filter(|e| !e.config_opts().is_empty())
            .ok_or_else(|| first.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5jerQsdmdWF0t18xGXo/EunLHnyom5dvP5cwMnmM16 old@laptop";
    const OTHER: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICjRVqpiGaWBDZSVhV4OfOTSnv7vQU497KVQ/eGosOqm";

    #[test]
    fn lines_with_options_and_comments_are_kept_and_matched_by_key() {
        let keys = AuthorizedKeys::parse(&[format!("no-port-forwarding,from=\"10.0.0.0/8\" {ED}")]).unwrap();
        assert_eq!(keys.file(), format!("no-port-forwarding,from=\"10.0.0.0/8\" {ED}\n"));
        let bare: PublicKey = ED.trim_end_matches(" old@laptop").parse().unwrap();
        assert!(keys.admits(&bare), "the comment does not matter");
        assert_eq!(keys.options_for(&bare), Some("no-port-forwarding,from=\"10.0.0.0/8\""));
        let both = AuthorizedKeys::parse(&[format!("restrict {ED}"), ED.to_owned()]).unwrap();
        assert_eq!(both.options_for(&bare), Some(""), "a plain line wins");
        // Options and no comment, as sshd takes them; written as given.
        let bare_line = ED.trim_end_matches(" old@laptop");
        let restricted = AuthorizedKeys::parse(&[format!("restrict {bare_line}")]).unwrap();
        assert_eq!(restricted.options_for(&bare), Some("restrict"));
        assert_eq!(restricted.file(), format!("restrict {bare_line}\n"));
        assert!(!keys.admits(&OTHER.parse().unwrap()));
    }

    #[test]
    fn a_bad_entry_is_named_by_its_place_and_an_empty_list_is_refused() {
        let err = AuthorizedKeys::parse(&[ED, "ssh-rsa not-base64"]).unwrap_err();
        assert!(matches!(err, AuthorizedKeysError::NotAKey { index: 1, .. }), "{err}");
        let err = AuthorizedKeys::parse(&[format!("{ED}\nssh-ed25519 AAAA injected")]).unwrap_err();
        assert!(err.to_string().contains("line break"), "{err}");
        assert_eq!(
            AuthorizedKeys::parse::<&str>(&[]).unwrap_err(),
            AuthorizedKeysError::Empty
        );
    }
}
