#!/usr/bin/env bash
# make bench: runs the benchmarks that track mcpguard's own cost (policy decisions, masking per
# shape, the recording commit), compares them with the results committed in bench/results.txt
# using benchstat, and writes the new results there (commit them to make them the next baseline).
#
# The rounds are interleaved: each round runs every benchmark once, BENCH_COUNT rounds in all,
# so a change of machine load during the run spreads over every benchmark instead of landing on
# one. bench/machine.txt says where and under what load the results were taken.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
COUNT=${BENCH_COUNT:-6}
OUT=bench/results.txt
new=$(mktemp)
trap 'rm -f "$new"' EXIT

run() { # package, benchmark regexp, extra flags
	"$GO" test -run '^$' -bench "$2" -benchmem -count 1 "${@:3}" "$1" | grep -E '^(Benchmark|goos|goarch|pkg|cpu)' >>"$new"
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for i in $(seq "$COUNT"); do
	echo "round $i/$COUNT" >&2
	run ./policy/ 'Decide100Rules' -benchtime 2000x
	run ./masking/ 'Shape|Result20KB' -benchtime 1s
	run ./recordings/ 'CommitLatency' -benchtime 1s
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

if [[ -s $OUT ]]; then
	"$GO" tool -modfile=tools/go.mod benchstat "$OUT" "$new"
else
	"$GO" tool -modfile=tools/go.mod benchstat "$new"
fi
cp "$new" "$OUT"
{
	echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "go: $("$GO" env GOVERSION)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') × $(nproc)"
	echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	echo "load average (1, 5, 15 min): $load_before before, $load_after after"
	echo "rounds: $COUNT, interleaved"
} >bench/machine.txt
echo "wrote $OUT and bench/machine.txt" >&2
