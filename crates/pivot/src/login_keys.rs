//! The SSH user's authorized keys on a host, when the provider keeps them (`ssh.authorized_keys`):
//! a machine's OS config sets them at first boot only, so a key rotated later would lock the
//! provider out of every host it already has.

use selfhosted_transport::{AuthorizedKeys, FileSpec};

use crate::node_files::HostFiles;
use crate::preflight::Account;

/// The provider's file among Fedora CoreOS' and Flatcar's per-source key files.
pub const KEY_DIR_FILE: &str = "selfhosted";

/// The files that make `keys` the whole set `account` lets in: `~/.ssh/authorized_keys`, and on
/// hosts that keep a file per source (`~/.ssh/authorized_keys.d`, read by Fedora CoreOS' sshd
/// and merged by Flatcar's `update-ssh-keys`) the provider's own file there, the others removed
/// once it is written, so a key dropped from the list (Ignition's first one too) stops working.
///
/// # Errors
/// A home whose path the provider will not put into a command or a file name.
pub fn files(keys: &AuthorizedKeys, account: &Account) -> Result<HostFiles, String> {
    let home = &account.home;
    if !home.starts_with('/') || !home.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c)) {
        return Err(format!(
            "the home of {} is {home:?}: ssh.authorized_keys is kept only in a home whose path is letters, digits and / . _ -",
            account.user
        ));
    }
    let file = |path: String| FileSpec::secret(path, keys.file()).with_owner(&account.user, &account.group);
    let mut out = HostFiles::default();
    out.files.push(file(format!("{home}/.ssh/authorized_keys")));
    if account.key_dir {
        let dir = format!("{home}/.ssh/authorized_keys.d");
        out.files.push(file(format!("{dir}/{KEY_DIR_FILE}")));
        out.now = Some(format!(
            "find '{dir}' -mindepth 1 -maxdepth 1 ! -name {KEY_DIR_FILE} ! -type d -delete"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> AuthorizedKeys {
        AuthorizedKeys::parse(&["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICjRVqpiGaWBDZSVhV4OfOTSnv7vQU497KVQ/eGosOqm new"])
            .unwrap()
    }

    fn account(home: &str, key_dir: bool) -> Account {
        Account {
            user: "core".into(),
            group: "core".into(),
            home: home.into(),
            key_dir,
        }
    }

    #[test]
    fn a_host_with_a_file_per_source_keeps_only_the_providers() {
        let f = files(&keys(), &account("/var/home/core", true)).unwrap();
        let paths: Vec<&str> = f.files.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/var/home/core/.ssh/authorized_keys",
                "/var/home/core/.ssh/authorized_keys.d/selfhosted"
            ]
        );
        assert!(f
            .files
            .iter()
            .all(|s| s.mode == 0o600 && s.owner == "core" && s.group == "core"));
        assert_eq!(f.files[0].content, keys().file().as_bytes());
        let now = f.now.unwrap();
        assert!(
            now.contains("'/var/home/core/.ssh/authorized_keys.d'") && now.contains("! -name selfhosted"),
            "{now}"
        );
    }

    #[test]
    fn a_plain_host_gets_authorized_keys_only_and_an_odd_home_is_refused() {
        let f = files(&keys(), &account("/home/core", false)).unwrap();
        assert_eq!(f.files.len(), 1);
        assert!(f.now.is_none());
        let err = files(&keys(), &account("/home/x'; rm -rf /", false)).unwrap_err();
        assert!(err.contains("letters, digits"), "{err}");
    }
}
