#!/usr/bin/env bash
# make compare BASE=REV: measures this checkout against an earlier revision side by side, on
# the same machine in the same run, with the repo's own load tools:
#   - capacity (e2e/cmd/soak -skip-soak -capacity -versus): CPU per call for allowed, masked,
#     recorded and masked+recorded traffic, both builds and the no-op floor (nullguard)
#     running side by side and measured in alternating rounds of $COMPARE_CAPACITY;
# then, in $COMPARE_ROUNDS rounds, each for the base binary and then this checkout:
#   - a low-rate soak (e2e/cmd/soak -duration $COMPARE_SOAK -rate 40): CPU per call;
#   - mcpload -self at $COMPARE_RATE calls/s: mcpguard's own time per call as the emulator
#     times it (ext_authz + ext_proc), p50 and p99; and once per round the same for nullguard,
#     the no-op server, which is the floor of that time on this machine.
# COMPARE_ROUNDS (2), COMPARE_CAPACITY (5s; 4 rounds: COMPARE_CAPACITY_ROUNDS), COMPARE_SOAK (60s), COMPARE_RATE (300),
# COMPARE_N (6000) tune it. The output is the tools' own tables, labelled, in compare.out.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
BASE=${BASE:?set BASE to the revision to compare with, e.g. make compare BASE=85cc4e2}
ROUNDS=${COMPARE_ROUNDS:-2}
CAP=${COMPARE_CAPACITY:-5s}
CAP_ROUNDS=${COMPARE_CAPACITY_ROUNDS:-4}
SOAK=${COMPARE_SOAK:-60s}
RATE=${COMPARE_RATE:-300}
N=${COMPARE_N:-6000}
OUT=${COMPARE_OUT:-compare.out}

work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach "$work/base" "$BASE" >/dev/null
(cd "$work/base" && "$GO" build -o "$work/mcpguard-base" ./cmd/mcpguard)
"$GO" build -o "$work/mcpguard-head" ./cmd/mcpguard
"$GO" build -o "$work/soak" ./e2e/cmd/soak
"$GO" build -o "$work/mcpload" ./e2e/cmd/mcpload
"$GO" build -o "$work/nullguard" ./e2e/cmd/nullguard

{
	echo "compare: base $(git rev-parse --short "$BASE"), head $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with uncommitted changes)')"
	echo "machine: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $("$GO" env GOVERSION)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"
echo "== capacity: $CAP_ROUNDS alternating rounds of $CAP per class and build (load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT"
"$work/soak" -skip-soak -capacity "$CAP" -versus "$work/mcpguard-base" -versus-rounds "$CAP_ROUNDS" -bin "$work/mcpguard-head" 2>/dev/null |
	grep -E '^\|' | tee -a "$OUT" || echo "(capacity failed)" | tee -a "$OUT"
for r in $(seq "$ROUNDS"); do
	for which in base head; do
		bin="$work/mcpguard-$which"
		echo "== round $r, $which: soak $SOAK at 40 calls/s (load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT"
		"$work/soak" -duration "$SOAK" -warm-up 10s -rate 40 -bin "$bin" 2>/dev/null | grep -E '^(requests|unexpected)' | tee -a "$OUT" || echo "(soak failed)" | tee -a "$OUT"
		echo "== round $r, $which: mcpload -self -rate $RATE (load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT"
		"$work/mcpload" -self -bin "$bin" -rate "$RATE" -c 32 -n "$N" -duration 2m -ttfe-n 0 -big-mb 0 2>/dev/null | grep -E '^(gateway|direct|  (total|mcpguard|ext_authz|ext_proc|upstream))' | tee -a "$OUT" || echo "(mcpload failed)" | tee -a "$OUT"
	done
	echo "== round $r, floor (nullguard): mcpload -self -rate $RATE (load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$OUT"
	"$work/mcpload" -self -bin "$work/nullguard" -rate "$RATE" -c 32 -n "$N" -duration 2m -ttfe-n 0 -big-mb 0 2>/dev/null | grep -E '^(gateway|  (mcpguard|ext_authz|ext_proc))' | tee -a "$OUT" || echo "(mcpload failed)" | tee -a "$OUT"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
