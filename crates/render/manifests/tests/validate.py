#!/usr/bin/env python3
"""Validate rendered manifests with kubernetes-validate (strict) in one process.

Usage: validate.py JOBS   where each line of JOBS is "<schema version>\t<yaml file>".
Prints one JSON object: counts, failures and objects whose API has no schema in that
version (reported, never silently dropped). Identical (version, object) pairs are
validated once and counted every time.
"""
import hashlib
import json
import sys

import kubernetes_validate as kv
import yaml


def main():
    objects = unique = 0
    failures, missing = [], []
    seen = {}
    with open(sys.argv[1]) as jobs:
        for line in jobs:
            line = line.rstrip("\n")
            if not line:
                continue
            version, path = line.split("\t", 1)
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
            for doc in docs:
                objects += 1
                key = (version, hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest())
                if key not in seen:
                    unique += 1
                    try:
                        kv.validate(doc, version, strict=True)
                        seen[key] = None
                    except kv.SchemaNotFoundError:
                        seen[key] = ("missing", None)
                    except kv.ValidationError as e:
                        seen[key] = ("failed", str(e)[:600])
                    except Exception as e:  # noqa: BLE001 - report, never hide
                        seen[key] = ("failed", "%s: %s" % (type(e).__name__, str(e)[:600]))
                result = seen[key]
                if result is None:
                    continue
                entry = {"path": path, "version": version, "kind": doc.get("kind"),
                         "apiVersion": doc.get("apiVersion"), "name": doc.get("metadata", {}).get("name")}
                if result[0] == "missing":
                    missing.append(entry)
                else:
                    entry["error"] = result[1]
                    failures.append(entry)
    json.dump({"objects": objects, "unique": unique, "failures": failures, "missing": missing}, sys.stdout)


if __name__ == "__main__":
    main()
