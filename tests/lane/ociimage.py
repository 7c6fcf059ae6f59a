#!/usr/bin/env python3
"""Write a one-layer OCI image-layout tarball (python3 stdlib only) for `ctr images import`.

Usage: ociimage.py OUT.tar NAME ENTRYPOINT FILE=PATH_IN_IMAGE [FILE=PATH_IN_IMAGE ...]

NAME is the full reference containerd records (e.g. registry.k8s.io/pause:3.2), ENTRYPOINT a
comma-separated argv. Every file is stored executable (0755), owned by root, with mtime 0, so the
same inputs always give the same digests. The layer also holds empty /tmp (1777), /etc and /var/run,
which runc and the Kubernetes binaries expect to exist.
"""
import hashlib
import io
import json
import os
import sys
import tarfile

EPOCH = "1970-01-01T00:00:00Z"


def entry(name, kind, mode, data=b""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def layer_bytes(files):
    """files: list of (source path, path in image). Returns the uncompressed layer tar."""
    out = io.BytesIO()
    dirs = {"tmp": 0o1777, "etc": 0o755, "var": 0o755, "var/run": 0o755}
    for _, dest in files:
        parts = dest.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.setdefault("/".join(parts[:i]), 0o755)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            tar.addfile(*entry(d, tarfile.DIRTYPE, dirs[d]))
        for src, dest in sorted(files, key=lambda f: f[1]):
            with open(src, "rb") as f:
                tar.addfile(*entry(dest.strip("/"), tarfile.REGTYPE, 0o755, f.read()))
    return out.getvalue()


def blob(obj):
    data = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    out, name, entrypoint = argv[0], argv[1], argv[2].split(",")
    files = []
    for spec in argv[3:]:
        src, sep, dest = spec.partition("=")
        if not sep or not dest.startswith("/"):
            sys.exit(f"bad FILE=PATH_IN_IMAGE: {spec}")
        files.append((src, dest))
    layer_digest, layer = blob(layer_bytes(files))
    config_digest, config = blob({
        "architecture": "amd64",
        "os": "linux",
        "created": EPOCH,
        "config": {
            "Entrypoint": entrypoint,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": EPOCH, "created_by": "tests/lane/ociimage.py"}],
    })
    manifest_digest, manifest = blob({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}],
    })
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
        }],
    }
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(*entry("oci-layout", tarfile.REGTYPE, 0o644, b'{"imageLayoutVersion":"1.0.0"}'))
        tar.addfile(*entry("index.json", tarfile.REGTYPE, 0o644, json.dumps(index).encode()))
        tar.addfile(*entry("blobs", tarfile.DIRTYPE, 0o755))
        tar.addfile(*entry("blobs/sha256", tarfile.DIRTYPE, 0o755))
        for digest, data in ((layer_digest, layer), (config_digest, config), (manifest_digest, manifest)):
            tar.addfile(*entry("blobs/sha256/" + digest.split(":", 1)[1], tarfile.REGTYPE, 0o644, data))
    os.replace(tmp, out)
    print(f"{name} {manifest_digest} layer={len(layer)}")


if __name__ == "__main__":
    main(sys.argv[1:])
