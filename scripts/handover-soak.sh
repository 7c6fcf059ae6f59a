#!/usr/bin/env bash
# The hand-over soak, outside CI: N apiserver hand-overs in a row on one cluster, then the
# certificate-renewal test N times (each on a fresh lane), every one under a prober that sends a
# real API request on a fresh connection every 50 ms with a 3 s timeout. Prints each round and the
# totals; exits non-zero if any request failed or any run failed. Needs what `scripts/test.sh` needs.
#   bash scripts/handover-soak.sh [N]     (N = 10 by default; ~1 min per hand-over, ~3 min per renewal)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
bash tests/lane/build.sh >/dev/null
bash tests/lane/agent-image.sh >/dev/null
log=$(mktemp /tmp/handover-soak.XXXXXX)
echo "== log: $log"
status=0
SELFHOSTED_HANDOVER_ROUNDS=$N cargo nextest run --profile soak --test pivot --no-capture \
  -E 'test(apiserver_hand_overs_in_a_row_lose_no_request)' >>"$log" 2>&1 || status=1
grep -E '^hand-over [0-9]' "$log" || true
for i in $(seq 1 "$N"); do
  cargo nextest run --test pivot --no-capture -E 'test(a_certificate_renewal_reaches_the_running_control_plane)' \
    >>"$log" 2>&1 || status=1
  grep -E '^renewal:' "$log" | tail -n1 | sed "s/^/renewal $i\/$N: /" || true
done
awk '
  /^hand-over [0-9]+\/[0-9]+:/ { u++; ur += $(NF-6); uf += $(NF-4) }
  /^renewal:/ { r++; for (i = 1; i <= NF; i++) { if ($i ~ /^requests,/) rr += $(i-1); if ($i ~ /^failed;/) rf += $(i-1) } }
  END {
    printf "hand-overs: %d runs, %d requests, %d failed\n", u, ur, uf
    printf "renewals:   %d runs, %d requests, %d failed\n", r, rr, rf
    exit (uf + rf > 0)
  }' "$log" || status=1
exit "$status"
