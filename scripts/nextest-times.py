#!/usr/bin/env python3
"""Prints the seconds of the slow tests from nextest's JUnit report (scripts/test.sh, after the run).

The slow tests: every test of the lane binaries (pivot, topology, pod_network, versions: the binaries
.config/nextest.toml puts in the `lane` test group) and any other test that took over 30 s; longest
first, with the binary, and FAILED or FLAKY where nextest says so.

Usage: nextest-times.py JUNIT_XML [MIN_SECONDS]
"""

import sys
import xml.etree.ElementTree as ET

LANE_BINARIES = {"pivot", "topology", "pod_network", "versions"}


def main() -> int:
    path = sys.argv[1]
    min_seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    root = ET.parse(path).getroot()
    rows = []
    for suite in root.iter("testsuite"):
        binary_id = suite.get("name", "")
        binary = binary_id.split("::", 1)[1] if "::" in binary_id else binary_id
        lane = binary in LANE_BINARIES
        for case in suite.iter("testcase"):
            seconds = float(case.get("time") or 0)
            if not lane and seconds <= min_seconds:
                continue
            tags = {child.tag for child in case}
            if tags & {"failure", "error"}:
                status = "FAILED"
            elif tags & {"flakyFailure", "flakyError"}:
                status = "FLAKY"
            elif "skipped" in tags:
                status = "skipped"
            else:
                status = ""
            rows.append((seconds, binary_id, case.get("name", "?"), status, lane))
    if not rows:
        print(f"   (no lane test and no test over {min_seconds:.0f} s in this run)")
        return 0
    rows.sort(key=lambda r: -r[0])
    width = max(len(r[1]) for r in rows)
    for seconds, binary_id, name, status, _ in rows:
        print(f"   {seconds:8.1f}  {binary_id:<{width}}  {name}{'  ' + status if status else ''}")
    lane_rows = [r for r in rows if r[4]]
    if lane_rows:
        print(f"   {sum(r[0] for r in lane_rows):8.1f}  the {len(lane_rows)} lane tests together")
    else:
        print("   (no lane test in this run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
