#!/usr/bin/env python3
"""Measures the provider beside plain Terraform and prints a ratio table.

Driven by scripts/bench.sh, which builds the release provider, installs it in
a filesystem mirror with its own CLI config, runs the two cargo benches
(PKI render, echo-example handshake) and hands their output files here.

This file measures, each as a median over --runs runs in fresh working dirs:
  * `terraform apply` wall time of examples/quickstart/main.tf (ECDSA P-256
    and RSA-2048) and of a config with one `terraform_data` resource;
  * peak RSS of the whole process tree of each apply (terraform plus every
    provider child), sampled from /proc every ~5 ms, and the provider
    process's own peak RSS;
  * start of the release provider binary -> its go-plugin handshake line,
    beside the startup of `terraform version`.
Only the Python standard library is used.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
POLL_S = 0.005
# /proc/<pid>/comm is cut to 15 bytes.
PROVIDER_COMM = "terraform-provider-selfhosted"[:15]
MAGIC_COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"

BASELINE_TF = """\
resource "terraform_data" "one" {
  input = "bench"
}
"""


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(1)


def tf_env(cli_config):
    """Terraform's environment: our CLI config only, no cache, no logs."""
    env = dict(os.environ)
    for k in ("TF_LOG", "TF_LOG_PATH", "TF_PLUGIN_CACHE_DIR", "TF_DATA_DIR", "TF_WORKSPACE"):
        env.pop(k, None)
    env.update(
        TF_CLI_CONFIG_FILE=cli_config,
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        NO_COLOR="1",
        CHECKPOINT_DISABLE="1",
    )
    return env


def rsa_variant(main_tf):
    """The quickstart with key_algorithm = "RSA_2048" after cluster_name."""
    out, n = re.subn(
        r'^(\s*)cluster_name(\s*)=.*$',
        lambda m: m.group(0) + f'\n{m.group(1)}key_algorithm{m.group(2)}= "RSA_2048"',
        main_tf,
        count=1,
        flags=re.M,
    )
    if n != 1:
        die("no cluster_name line in the quickstart to add key_algorithm after")
    return out


class Workdir:
    """A fresh, initialised Terraform working dir holding one main.tf."""

    def __init__(self, parent, name, main_tf, env):
        self.path = tempfile.mkdtemp(prefix=f"{name}-", dir=parent)
        self.env = env
        with open(os.path.join(self.path, "main.tf"), "w") as f:
            f.write(main_tf)
        self.check(["terraform", "init", "-input=false", "-no-color"])

    def check(self, argv):
        r = subprocess.run(argv, cwd=self.path, env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            die(f"{' '.join(argv)} failed in {self.path}:\n{r.stdout}\n{r.stderr}")

    def apply_argv(self):
        return ["terraform", "apply", "-input=false", "-auto-approve", "-no-color"]

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def timed_apply(wd):
    """Wall time of one `terraform apply`, in ms."""
    t = time.perf_counter()
    wd.check(wd.apply_argv())
    return (time.perf_counter() - t) * 1000.0


def read_stat(pid):
    """(ppid, comm) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm sits in parentheses and may itself contain spaces or ')'.
    close = data.rfind(b")")
    comm = data[data.find(b"(") + 1 : close].decode(errors="replace")
    ppid = int(data[close + 2 :].split()[1])
    return ppid, comm


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def sampled_apply(wd):
    """Runs one apply, polling /proc every ~5 ms.

    Returns (peak RSS of the process tree, peak RSS of any one provider
    process), in bytes. A pid seen once outside the tree is never read again:
    processes only ever join a tree when they are created.
    """
    proc = subprocess.Popen(
        wd.apply_argv(), cwd=wd.path, env=wd.env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    tree = {proc.pid}
    foreign = set()
    peak_tree = 0
    peak_provider = 0
    while True:
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            if pid in tree or pid in foreign:
                continue
            st = read_stat(pid)
            if st is None:
                continue
            (tree if st[0] in tree else foreign).add(pid)
        total = 0
        for pid in list(tree):
            st = read_stat(pid)
            if st is None:
                if pid != proc.pid:
                    tree.discard(pid)
                continue
            rss = rss_bytes(pid)
            total += rss
            if st[1] == PROVIDER_COMM:
                peak_provider = max(peak_provider, rss)
        peak_tree = max(peak_tree, total)
        if proc.poll() is not None:
            break
        time.sleep(POLL_S)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        die(f"terraform apply failed in {wd.path}:\n{err}")
    return peak_tree, peak_provider


def handshake_ms(provider, pem, env):
    """Start of the provider binary -> its handshake line on stdout, in ms."""
    penv = dict(env)
    penv.update(TF_PLUGIN_MAGIC_COOKIE=MAGIC_COOKIE, PLUGIN_CLIENT_CERT=pem, PLUGIN_PROTOCOL_VERSIONS="6")
    t = time.perf_counter()
    child = subprocess.Popen([provider], env=penv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = child.stdout.readline().decode(errors="replace")
    ms = (time.perf_counter() - t) * 1000.0
    child.kill()
    child.wait()
    if not line.startswith("1|6|tcp|127.0.0.1:"):
        die(f"unexpected handshake line from {provider}: {line!r}")
    return ms


def terraform_version_ms(env, cwd):
    t = time.perf_counter()
    r = subprocess.run(["terraform", "version"], cwd=cwd, env=env, capture_output=True)
    ms = (time.perf_counter() - t) * 1000.0
    if r.returncode != 0:
        die(f"terraform version failed: {r.stderr!r}")
    return ms


def parse_render(path):
    """Medians (ms) by algorithm from `cargo bench -p selfhosted-pki --bench render`."""
    out = {}
    with open(path) as f:
        for m in re.finditer(r"full PKI render (\S+): median ([\d.]+) ms", f.read()):
            out[m.group(1)] = float(m.group(2))
    return out


def parse_handshake(path):
    """Median (ms) from `cargo bench -p selfhosted-protocol --bench handshake`."""
    with open(path) as f:
        m = re.search(r"handshake line over \d+ runs: median ([\d.]+) ms", f.read())
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="scratch dir (removed by the caller)")
    ap.add_argument("--cli-config", required=True)
    ap.add_argument("--provider", required=True, help="release provider binary")
    ap.add_argument("--client-cert", required=True, help="PEM file standing in for Terraform's client cert")
    ap.add_argument("--quickstart", required=True)
    ap.add_argument("--render", required=True, help="output of the pki render bench")
    ap.add_argument("--handshake", required=True, help="output of the protocol handshake bench")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--handshake-runs", type=int, default=20)
    a = ap.parse_args()

    env = tf_env(a.cli_config)
    with open(a.quickstart) as f:
        quickstart = f.read()
    with open(a.client_cert) as f:
        pem = f.read()
    configs = {
        "quickstart ECDSA_P256": quickstart,
        "quickstart RSA_2048": rsa_variant(quickstart),
        "terraform_data": BASELINE_TF,
    }

    # Interleave configs run by run so drifting machine load hits all alike.
    wall = {k: [] for k in configs}
    tree = {k: [] for k in configs}
    prov = {k: [] for k in configs}
    for i in range(a.runs):
        for name, tf in configs.items():
            slug = name.replace(" ", "-").lower()
            wd = Workdir(a.work, slug, tf, env)
            wall[name].append(timed_apply(wd))
            wd.remove()
            wd = Workdir(a.work, slug, tf, env)
            t, p = sampled_apply(wd)
            wd.remove()
            tree[name].append(t)
            prov[name].append(p)
        print(f"  apply run {i + 1}/{a.runs} done", file=sys.stderr)

    hs = [handshake_ms(a.provider, pem, env) for _ in range(a.handshake_runs)]
    tv = [terraform_version_ms(env, a.work) for _ in range(a.handshake_runs)]

    med = statistics.median
    mib = lambda b: b / (1 << 20)
    base_apply = med(wall["terraform_data"])
    base_tree = mib(med(tree["terraform_data"]))
    render = parse_render(a.render)
    echo_hs = parse_handshake(a.handshake)

    rows = []
    for alg in ("ECDSA_P256", "RSA_2048"):
        if alg in render:
            rows.append((f"PKI render {alg} (ms) vs terraform_data apply", render[alg], base_apply))
    for alg in ("ECDSA_P256", "RSA_2048"):
        rows.append((f"apply quickstart {alg} (ms) vs terraform_data apply", med(wall[f"quickstart {alg}"]), base_apply))
    rows.append(("provider start->handshake (ms) vs terraform version", med(hs), med(tv)))
    rows.append(("provider start->handshake (ms) vs terraform_data apply", med(hs), base_apply))
    if echo_hs is not None:
        rows.append(("provider start->handshake (ms) vs echo example", med(hs), echo_hs))
    for alg in ("ECDSA_P256", "RSA_2048"):
        rows.append((f"peak RSS tree, apply quickstart {alg} (MiB) vs terraform_data",
                     mib(med(tree[f"quickstart {alg}"])), base_tree))
    for alg in ("ECDSA_P256", "RSA_2048"):
        rows.append((f"peak RSS provider process, quickstart {alg} (MiB) vs terraform_data tree",
                     mib(med(prov[f"quickstart {alg}"])), base_tree))

    w = max(len(r[0]) for r in rows)
    print(f"\nmedians: applies over {a.runs} runs each (fresh dirs), handshakes over {a.handshake_runs}; "
          f"RSS sampled every {POLL_S * 1000:.0f} ms")
    print(f"{'metric':<{w}}  {'ours':>10}  {'baseline':>10}  {'ratio':>8}")
    print(f"{'-' * w}  {'-' * 10}  {'-' * 10}  {'-' * 8}")
    for metric, ours, base in rows:
        print(f"{metric:<{w}}  {ours:>10.2f}  {base:>10.2f}  {ours / base:>8.3f}")


if __name__ == "__main__":
    main()
