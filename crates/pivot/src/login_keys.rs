//! The SSH user's authorized keys on a host, when the provider keeps them (`ssh.authorized_keys`):
//! a machine's OS config sets them at first boot only, so a key rotated later would lock the
//! provider out of every host it already has.

use selfhosted_transport::{AuthorizedKeys, FileSpec};

use crate::node_files::HostFiles;
use crate::preflight::Account;

/// The provider's file among Fedora CoreOS' and Flatcar's per-source key files.
pub const KEY_DIR_FILE: &str = "selfhosted";

/// The services that put a cloud's metadata keys back at every boot (Fedora CoreOS'
/// Afterburn, Flatcar's coreos-metadata), masked where the provider keeps the keys: else a key
/// dropped from the list (the droplet's or instance's first one) would let in again after the
/// next reboot.
const CLOUD_KEY_SERVICES: [&str; 2] = ["afterburn-sshkeys", "coreos-metadata-sshkeys"];

/// The files that make `keys` the whole set `account` lets in: `~/.ssh/authorized_keys`, and on
/// hosts that keep a file per source (`~/.ssh/authorized_keys.d`, read by Fedora CoreOS' sshd
/// and merged by Flatcar's `update-ssh-keys`) the provider's own file there, the others removed
/// once it is written and the cloud's key services masked, so a key dropped from the list
/// (Ignition's first one too) stops working for good.
///
/// # Errors
/// A home or account name the provider will not put into a command or a file name.
pub fn files(keys: &AuthorizedKeys, account: &Account) -> Result<HostFiles, String> {
    let home = &account.home;
    if !home.starts_with('/') || !home.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c)) {
        return Err(format!(
            "the home of {} is {home:?}: ssh.authorized_keys is kept only in a home whose path is letters, digits and / . _ -",
            account.user
        ));
    }
    let plain = |n: &str| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !plain(&account.user) || !plain(&account.group) {
        return Err(format!(
            "the SSH user {:?} (group {:?}) is not a plain name: ssh.authorized_keys is kept only for letters, digits and . _ -",
            account.user, account.group
        ));
    }
    // `/` (root's home on some hosts) without a doubled slash.
    let ssh = format!("{}/.ssh", home.trim_end_matches('/'));
    let file = |path: String| FileSpec::secret(path, keys.file()).with_owner(&account.user, &account.group);
    let mut out = HostFiles::default();
    out.files.push(file(format!("{ssh}/authorized_keys")));
    if account.key_dir {
        let dir = format!("{ssh}/authorized_keys.d");
        out.files.push(file(format!("{dir}/{KEY_DIR_FILE}")));
        let services: Vec<String> = CLOUD_KEY_SERVICES
            .iter()
            .map(|s| format!("{s}@{}.service", account.user))
            .collect();
        // `{dir}/`: into the folder even where it is a link to one.
        out.now = Some(format!(
            "find '{dir}/' -mindepth 1 -maxdepth 1 ! -name {KEY_DIR_FILE} ! -type d -delete && \
             {{ ! command -v systemctl >/dev/null || systemctl mask {} >/dev/null; }}",
            services.join(" ")
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
            now.contains("'/var/home/core/.ssh/authorized_keys.d/'") && now.contains("! -name selfhosted"),
            "{now}"
        );
        assert!(
            now.contains("systemctl mask afterburn-sshkeys@core.service coreos-metadata-sshkeys@core.service"),
            "the cloud's key services cannot put a dropped key back at the next boot: {now}"
        );
    }

    #[test]
    fn a_plain_host_gets_authorized_keys_only_and_an_odd_home_is_refused() {
        let f = files(&keys(), &account("/home/core", false)).unwrap();
        assert_eq!(f.files.len(), 1);
        assert!(f.now.is_none());
        let err = files(&keys(), &account("/home/x'; rm -rf /", false)).unwrap_err();
        assert!(err.contains("letters, digits"), "{err}");
        let mut odd = account("/home/core", true);
        odd.user = "core;reboot".into();
        assert!(files(&keys(), &odd).unwrap_err().contains("not a plain name"));
        let root = files(&keys(), &account("/", false)).unwrap();
        assert_eq!(root.files[0].path, "/.ssh/authorized_keys");
    }
}
