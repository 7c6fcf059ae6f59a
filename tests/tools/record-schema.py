#!/usr/bin/env python3
"""Records what the examples test needs of another provider's schema.

Reads `terraform providers schema -json` output (run where the real provider is installed)
on stdin and writes, on stdout, the same format cut down to the managed resource types a
module uses: types and flags only, with descriptions dropped. The examples test serves the
result with the `recorded_schema` stand-in (crates/protocol/examples/recorded_schema.rs).

    terraform providers schema -json | tests/tools/record-schema.py \
        "$(grep -ho 'resource "[a-z0-9_]*"' -r examples/digitalocean | cut -d'"' -f2 | sort -u)" \
        > tests/fixtures/digitalocean-2.99.1.schema.json
"""

import json
import sys

DROPPED = {"description", "description_kind", "deprecation_message"}


def trimmed(value, names=False):
    """The value without its descriptions, at every depth (`names`: a map of attribute or
    block names, whose keys are names, never descriptions)."""
    if isinstance(value, dict):
        return {
            k: trimmed(v, k in ("attributes", "block_types") and not names)
            for k, v in value.items()
            if names or k not in DROPPED
        }
    if isinstance(value, list):
        return [trimmed(v) for v in value]
    return value


def main():
    wanted = set(" ".join(sys.argv[1:]).split())
    if not wanted:
        sys.exit("usage: record-schema.py RESOURCE_TYPE... < schema.json")
    schemas = json.load(sys.stdin)["provider_schemas"]
    if len(schemas) != 1:
        sys.exit(f"expected the schema of one provider, got {sorted(schemas)}")
    (source, provider), = schemas.items()
    resources = provider.get("resource_schemas", {})
    missing = sorted(wanted - set(resources))
    if missing:
        sys.exit(f"{source} has no resource types {missing}")
    out = {
        "format_version": "1.0",
        "provider_schemas": {
            source: {
                "provider": trimmed(provider["provider"]),
                "resource_schemas": {k: trimmed(resources[k]) for k in sorted(wanted)},
            }
        },
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
