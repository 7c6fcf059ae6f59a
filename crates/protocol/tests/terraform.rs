//! End to end with the real `terraform` CLI driving the `echo` example
//! provider through a dev_overrides CLI config written per test: the full
//! lifecycle (create, plan-again-empty, update, replace, destroy),
//! validation diagnostics with attribute paths, write-only and private
//! state, import, state upgrade, StopProvider on Ctrl-C, and logs under
//! TF_LOG that never contain secrets.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Workspace {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Workspace {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
        let plugins = root.join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        std::fs::copy(support::echo_binary(), plugins.join("terraform-provider-selfhosted")).expect("copy provider");
        std::fs::write(
            root.join("cli.tfrc"),
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"selfhosted/selfhosted\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                plugins.display()
            ),
        )
        .expect("cli config");
        std::fs::create_dir_all(root.join("cfg")).expect("cfg dir");
        Self { _tmp: tmp, root }
    }

    fn dir(&self) -> PathBuf {
        self.root.join("cfg")
    }

    fn write(&self, resources: &str) {
        let tf = format!(
            "terraform {{\n  required_providers {{\n    selfhosted = {{ source = \"selfhosted/selfhosted\" }}\n  }}\n}}\n{resources}"
        );
        std::fs::write(self.dir().join("main.tf"), tf).expect("main.tf");
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("terraform");
        c.args(args)
            .current_dir(self.dir())
            .env("TF_CLI_CONFIG_FILE", self.root.join("cli.tfrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG")
            .env_remove("TF_LOG_PROVIDER")
            .env_remove("TF_LOG_PATH");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run terraform")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "terraform {args:?} failed:\n{text}");
        text
    }

    /// `terraform plan -detailed-exitcode`: 0 no changes, 2 changes.
    fn plan_code(&self) -> (i32, String) {
        let out = self.run(&["plan", "-detailed-exitcode", "-no-color", "-input=false"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn state(&self) -> serde_json::Value {
        let s = std::fs::read_to_string(self.dir().join("terraform.tfstate")).expect("state file");
        serde_json::from_str(&s).expect("state JSON")
    }

    fn instance(&self, name: &str) -> serde_json::Value {
        let st = self.state();
        st["resources"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == name))
            .map(|r| r["instances"][0].clone())
            .unwrap_or(serde_json::Value::Null)
    }
}

const APPLY: [&str; 4] = ["apply", "-auto-approve", "-no-color", "-input=false"];

fn echo(input: &str, replace_me: &str) -> String {
    format!(
        r#"
resource "selfhosted_echo" "x" {{
  input       = "{input}"
  replace_me  = "{replace_me}"
  secret      = "s3cret-value"
  password_wo = "wo-password-value"
  tags        = {{ a = "b" }}
  anything    = {{ k = [1, 2] }}
  servers     = [{{ name = "a", port = 1 }}, {{ name = "b" }}]
  rule {{ port = 80 }}
  rule {{ port = 443 }}
}}
output "result" {{ value = selfhosted_echo.x.result }}
"#
    )
}

#[test]
fn lifecycle_create_noop_update_replace_destroy() {
    let ws = Workspace::new();
    ws.write(&echo("hello", "one"));
    ws.ok(&APPLY);
    let inst = ws.instance("x");
    let attrs = &inst["attributes"];
    assert_eq!(attrs["result"], "hello");
    assert_eq!(attrs["id"], "echo-hello");
    assert_eq!(attrs["wo_seen"], true, "apply saw the write-only value in config");
    assert!(attrs["password_wo"].is_null(), "write-only value stored: {attrs}");
    assert_eq!(attrs["servers"][1]["port"], serde_json::Value::Null);
    assert_eq!(attrs["rule"][1]["port"], 443);
    // State stores a dynamic value with its type.
    assert_eq!(attrs["anything"]["value"]["k"][1], 2, "{attrs}");
    assert_eq!(inst["schema_version"], 1);
    // Private state survives as opaque bytes.
    assert_eq!(inst["private"], "ZWNoby1wcml2YXRl", "base64 of echo-private");
    let raw = std::fs::read_to_string(ws.dir().join("terraform.tfstate")).expect("state");
    assert!(!raw.contains("wo-password-value"), "write-only value leaked into state");

    let (code, text) = ws.plan_code();
    assert_eq!(code, 0, "second plan must be empty:\n{text}");

    // In-place update: result recomputed, id and created_at kept.
    ws.write(&echo("world", "one"));
    let (code, text) = ws.plan_code();
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("update in-place") && text.contains("(known after apply)"),
        "{text}"
    );
    assert!(!text.contains("must be replaced"), "{text}");
    ws.ok(&APPLY);
    let attrs = ws.instance("x")["attributes"].clone();
    assert_eq!(attrs["result"], "world");
    assert_eq!(attrs["id"], "echo-hello", "use-state-for-unknown kept the id");
    assert_eq!(ws.plan_code().0, 0);

    // Requires-replace path.
    ws.write(&echo("world", "two"));
    let (code, text) = ws.plan_code();
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("must be replaced") && text.contains("forces replacement"),
        "{text}"
    );
    ws.ok(&APPLY);
    assert_eq!(ws.instance("x")["attributes"]["replace_me"], "two");
    assert_eq!(ws.plan_code().0, 0);

    // Refresh keeps state as is.
    ws.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color", "-input=false"]);
    assert_eq!(ws.plan_code().0, 0);

    ws.ok(&["destroy", "-auto-approve", "-no-color", "-input=false"]);
    assert!(
        ws.state()["resources"].as_array().is_none_or(Vec::is_empty),
        "destroy left resources"
    );
}

#[test]
fn validation_errors_point_at_the_attribute() {
    let ws = Workspace::new();
    ws.write(&echo("invalid", "one"));
    let (code, text) = ws.plan_code();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Invalid input"), "{text}");
    // Terraform quotes the offending line when the diagnostic has a path.
    assert!(text.contains(r#"input       = "invalid""#), "{text}");
}

#[test]
fn import_then_plan_is_empty() {
    let ws = Workspace::new();
    ws.write("resource \"selfhosted_echo\" \"i\" {\n  input = \"abc\"\n}\n");
    ws.ok(&["import", "-no-color", "-input=false", "selfhosted_echo.i", "abc"]);
    let attrs = ws.instance("i")["attributes"].clone();
    assert_eq!(attrs["id"], "echo-abc");
    assert_eq!(attrs["created_at"], "imported");
    let (code, text) = ws.plan_code();
    assert_eq!(code, 0, "{text}");
}

#[test]
fn old_state_is_upgraded() {
    let ws = Workspace::new();
    ws.write("resource \"selfhosted_echo\" \"u\" {\n  input = \"up\"\n}\n");
    // State as a (hypothetical) schema version 0 wrote it: `output` instead
    // of `result`, and no newer attributes.
    let state = serde_json::json!({
        "version": 4,
        "terraform_version": "1.11.4",
        "serial": 1,
        "lineage": "6f1c2a7e-1111-2222-3333-444455556666",
        "outputs": {},
        "resources": [{
            "mode": "managed",
            "type": "selfhosted_echo",
            "name": "u",
            "provider": "provider[\"registry.terraform.io/selfhosted/selfhosted\"]",
            "instances": [{
                "schema_version": 0,
                "attributes": {"id": "echo-up", "input": "up", "output": "up", "created_at": "long ago"},
                "sensitive_attributes": []
            }]
        }],
        "check_results": null
    });
    std::fs::write(ws.dir().join("terraform.tfstate"), state.to_string()).expect("write state");
    ws.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color", "-input=false"]);
    let inst = ws.instance("u");
    assert_eq!(inst["schema_version"], 1);
    assert_eq!(
        inst["attributes"]["result"], "up",
        "upgrade moved output to result: {inst}"
    );
    assert_eq!(inst["attributes"]["created_at"], "long ago");
    assert!(inst["attributes"].get("output").is_none());
}

#[test]
fn ctrl_c_stops_a_running_apply_through_stop_provider() {
    let ws = Workspace::new();
    ws.write("resource \"selfhosted_echo\" \"s\" {\n  input    = \"slow\"\n  delay_ms = 60000\n}\n");
    let mut child = ws
        .command(&APPLY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn terraform");
    let stdout = child.stdout.take().expect("stdout");
    // Wait until the resource is being created.
    let reader = std::thread::spawn(move || {
        use std::io::{BufRead, BufReader};
        let mut all = String::new();
        let mut signalled = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            if signalled.is_none() && line.contains("Creating...") {
                signalled = Some(Instant::now());
            }
            all.push_str(&line);
            all.push('\n');
        }
        (all, signalled)
    });
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let st = ws.dir().join(".terraform.tfstate.lock.info");
        if st.exists() || start.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    // Give terraform time to reach the apply call, then press Ctrl-C.
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("terraform did not stop after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (out, creating) = reader.join().expect("reader");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).expect("stderr");
    assert!(creating.is_some(), "apply never started:\n{out}\n{err}");
    assert!(!exit.success(), "terraform should report the stopped apply");
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        sent.elapsed()
    );
    assert!(
        format!("{out}{err}").contains("cancelled by StopProvider"),
        "{out}\n{err}"
    );
}

#[test]
fn tf_log_shows_provider_logs_without_secrets() {
    let ws = Workspace::new();
    ws.write(&echo("logged", "one"));
    let out = ws.command(&APPLY).env("TF_LOG", "TRACE").output().expect("terraform");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // go-plugin re-logs our JSON lines under the plugin's name.
    assert!(
        err.contains("ApplyResourceChange") && err.contains("@module=provider.selfhosted"),
        "{err}"
    );
    assert!(!err.contains("s3cret-value"), "sensitive value in logs");
    assert!(!err.contains("wo-password-value"), "write-only value in logs");
    // The provider exits on Shutdown; Terraform never has to kill it.
    assert!(!err.contains("failed to exit gracefully"), "{err}");
}
