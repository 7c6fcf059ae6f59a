//! Release artifacts as a user installs them: `scripts/release.sh` packs the provider into the
//! registry's layout, signed with a throwaway GnuPG key; the checksums and the signature verify
//! with `sha256sum` and `gpg`; and `terraform init` installs the zip from a packed filesystem
//! mirror holding nothing else (the lock's `h1:` hash recomputed here), and from a network
//! mirror over HTTPS on loopback that serves SHA256SUMS' checksum, which Terraform enforces.

mod support;

use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Go's `dirhash.Hash1` of `(name, content)` files, as Terraform's `h1:` package hashes.
fn h1_of(files: &[(String, Vec<u8>)]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let mut files: Vec<&(String, Vec<u8>)> = files.iter().collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let summary: String = files
        .iter()
        .map(|(name, content)| {
            let digest: String = sha2::Sha256::digest(content)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{digest}  {name}\n")
        })
        .collect();
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(summary.as_bytes()))
    )
}

fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// A signing key of its own in `home`; returns its fingerprint.
fn test_key(home: &Path) -> String {
    std::fs::create_dir_all(home).unwrap();
    std::fs::set_permissions(home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    run(Command::new("gpg").env("GNUPGHOME", home).args([
        "--batch",
        "--passphrase",
        "",
        "--quick-gen-key",
        "selfhosted release test <release-test@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]));
    let listing =
        run(Command::new("gpg")
            .env("GNUPGHOME", home)
            .args(["--batch", "--with-colons", "--list-secret-keys"]));
    listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .map(|l| l.trim_matches(':').to_owned())
        .expect("a fingerprint")
}

#[test]
fn release_artifacts_verify_and_install_from_a_packed_mirror() {
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let gnupg = tmp.path().join("gnupg");
    let key = test_key(&gnupg);
    let dist = tmp.path().join("dist");
    let v = version();
    run(Command::new("bash")
        .arg(support::lane::repo().join("scripts/release.sh"))
        .args(["--out"])
        .arg(&dist)
        .args([
            "--gpg-key",
            &key,
            "--binary",
            env!("CARGO_BIN_EXE_terraform-provider-selfhosted"),
        ])
        .env("GNUPGHOME", &gnupg));
    let name = |suffix: &str| format!("terraform-provider-selfhosted_{v}_{suffix}");
    let mut files: Vec<String> = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            name("SHA256SUMS"),
            name("SHA256SUMS.sig"),
            name("linux_amd64.zip"),
            name("manifest.json")
        ]
    );
    // The checksums hold, the signature is good, and a changed byte breaks it.
    run(Command::new("sha256sum")
        .current_dir(&dist)
        .args(["-c", &name("SHA256SUMS")]));
    let verify = |sums: &Path| {
        Command::new("gpg")
            .env("GNUPGHOME", &gnupg)
            .args(["--batch", "--verify"])
            .arg(dist.join(name("SHA256SUMS.sig")))
            .arg(sums)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(verify(&dist.join(name("SHA256SUMS"))), "the signature verifies");
    let forged = tmp.path().join("forged");
    let sums = std::fs::read_to_string(dist.join(name("SHA256SUMS"))).unwrap();
    std::fs::write(&forged, sums.replacen('0', "1", 1)).unwrap();
    assert!(!verify(&forged), "a changed SHA256SUMS fails verification");
    assert_eq!(
        std::fs::read_to_string(dist.join(name("manifest.json"))).unwrap(),
        std::fs::read_to_string(support::lane::repo().join("terraform-registry-manifest.json")).unwrap()
    );
    let listing = run(Command::new("unzip").arg("-Z1").arg(dist.join(name("linux_amd64.zip"))));
    assert_eq!(listing.trim(), format!("terraform-provider-selfhosted_v{v}"));

    // A packed mirror with only the zip, as a user (or an air-gapped CI) installs it.
    let mirror = tmp.path().join("mirror");
    let into = mirror.join("registry.terraform.io/selfhosted/selfhosted");
    std::fs::create_dir_all(&into).unwrap();
    std::fs::copy(dist.join(name("linux_amd64.zip")), into.join(name("linux_amd64.zip"))).unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let cli = tmp.path().join("cli.tfrc");
    std::fs::write(
        &cli,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/selfhosted/selfhosted\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/selfhosted/selfhosted\"]\n  }}\n}}\n",
            mirror.display()
        ),
    )
    .unwrap();
    std::fs::write(
        ws.join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    selfhosted = {{\n      source  = \"selfhosted/selfhosted\"\n      version = \"= {v}\"\n    }}\n  }}\n}}\n\nresource \"selfhosted_cluster_assets\" \"c\" {{\n  cluster_name = \"c\"\n  api_servers  = [\"c.example.com\"]\n  etcd_servers = [\"10.0.0.1\"]\n}}\n"
        ),
    )
    .unwrap();
    let terraform = |args: &[&str]| {
        run(Command::new("terraform")
            .args(args)
            .current_dir(&ws)
            .env("TF_CLI_CONFIG_FILE", &cli)
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_PLUGIN_CACHE_DIR"))
    };
    terraform(&["init", "-input=false", "-no-color"]);
    // A filesystem mirror gives Terraform no checksum list, so the lock records the `h1:`
    // hash of the zip's contents: computed here independently (Go's dirhash "h1"), it must
    // be the hash of the released binary.
    let lock = std::fs::read_to_string(ws.join(".terraform.lock.hcl")).unwrap();
    let binary = std::fs::read(env!("CARGO_BIN_EXE_terraform-provider-selfhosted")).unwrap();
    let h1 = h1_of(&[(format!("terraform-provider-selfhosted_v{v}"), binary)]);
    assert!(lock.contains(&format!("\"{h1}\"")), "{h1} in:\n{lock}");
    assert!(lock.contains(&format!("version     = \"{v}\"")), "{lock}");
    // And the installed provider works.
    let plan = terraform(&["plan", "-input=false", "-no-color"]);
    assert!(plan.contains("1 to add"), "{plan}");

    // A network mirror over HTTPS on loopback (the provider network mirror protocol) hands
    // Terraform the checksum of SHA256SUMS, and Terraform checks the download against it.
    let zip_sum = sums
        .lines()
        .find(|l| l.ends_with(&name("linux_amd64.zip")))
        .and_then(|l| l.split_whitespace().next())
        .expect("the zip's checksum")
        .to_owned();
    let site = tmp.path().join("site/registry.terraform.io/selfhosted/selfhosted");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::copy(dist.join(name("linux_amd64.zip")), site.join(name("linux_amd64.zip"))).unwrap();
    std::fs::write(site.join("index.json"), format!("{{\"versions\": {{\"{v}\": {{}}}}}}")).unwrap();
    let archives = |sum: &str| {
        std::fs::write(
            site.join(format!("{v}.json")),
            format!(
                "{{\"archives\": {{\"linux_amd64\": {{\"url\": \"{}\", \"hashes\": [\"zh:{sum}\"]}}}}}}",
                name("linux_amd64.zip")
            ),
        )
        .unwrap()
    };
    let server = HttpsMirror::start(&tmp.path().join("site"), tmp.path());
    std::fs::write(
        &cli,
        format!(
            "provider_installation {{\n  network_mirror {{\n    url     = \"{}\"\n    include = [\"registry.terraform.io/selfhosted/selfhosted\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/selfhosted/selfhosted\"]\n  }}\n}}\n",
            server.url
        ),
    )
    .unwrap();
    let init = || {
        let _ = std::fs::remove_dir_all(ws.join(".terraform"));
        let _ = std::fs::remove_file(ws.join(".terraform.lock.hcl"));
        Command::new("terraform")
            .args(["init", "-input=false", "-no-color"])
            .current_dir(&ws)
            .env("TF_CLI_CONFIG_FILE", &cli)
            .env("SSL_CERT_FILE", &server.ca)
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .output()
            .unwrap()
    };
    // A checksum that is not the zip's: Terraform refuses the download.
    archives(&"0".repeat(64));
    let refused = init();
    assert!(!refused.status.success(), "a wrong checksum is refused");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("checksum"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // SHA256SUMS' checksum: installed, and the lock holds the binary's `h1:`.
    archives(&zip_sum);
    let out = init();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lock = std::fs::read_to_string(ws.join(".terraform.lock.hcl")).unwrap();
    assert!(lock.contains(&format!("\"{h1}\"")), "{lock}");
}

/// A static HTTPS server on 127.0.0.1 (Python's, with a certificate made by openssl), killed
/// on drop.
struct HttpsMirror {
    url: String,
    ca: std::path::PathBuf,
    child: std::process::Child,
}

impl HttpsMirror {
    fn start(root: &Path, work: &Path) -> HttpsMirror {
        let (cert, key) = (work.join("mirror.crt"), work.join("mirror.key"));
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let script = "import http.server, ssl, sys, functools\n\
            handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\n\
            server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)\n\
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
            ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n\
            server.socket = ctx.wrap_socket(server.socket, server_side=True)\n\
            print(server.server_address[1], flush=True)\n\
            server.serve_forever()\n";
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(root)
            .arg(&cert)
            .arg(&key)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 serves the mirror");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("the port");
        let port: u16 = line.trim().parse().expect("a port number");
        HttpsMirror {
            url: format!("https://127.0.0.1:{port}/"),
            ca: cert,
            child,
        }
    }
}

impl Drop for HttpsMirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
