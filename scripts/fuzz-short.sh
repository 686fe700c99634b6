#!/usr/bin/env bash
# Runs every Fuzz target of the module for FUZZTIME on top of its committed seeds.
#
# Go 1.26's fuzz coordinator can report a bare "context deadline exceeded" when -fuzztime
# expires while a worker is mid-call on a loaded machine (go.dev/issue/75804, fixed in
# Go 1.27). Such a run wrote no failing input, so it is reported as a flake; any failure
# that wrote a reproducer under testdata/fuzz, or any other failure, fails the run.
set -uo pipefail
FUZZTIME=${FUZZTIME:-10s}
GO=${GO:-go}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0 failed=0 flaked=0
for pkg in $($GO list ./...); do
  dir=$($GO list -f '{{.Dir}}' "$pkg")
  for t in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    corpus="$dir/testdata/fuzz/$t"
    before=$(ls "$corpus" 2>/dev/null | sort)
    echo "fuzz $pkg $t ($FUZZTIME)"
    if $GO test -run='^$' -fuzz="^$t\$" -fuzztime="$FUZZTIME" -fuzzminimizetime=1x "$pkg" >"$log" 2>&1; then
      passed=$((passed + 1))
      continue
    fi
    after=$(ls "$corpus" 2>/dev/null | sort)
    if [ "$before" = "$after" ] && grep -q '^    context deadline exceeded$' "$log" &&
      ! grep -q 'Failing input written' "$log" && [ "$(grep -c -- '--- FAIL' "$log")" -eq 1 ]; then
      echo "  flake: fuzz coordinator deadline race (go.dev/issue/75804), no failing input written"
      flaked=$((flaked + 1))
      continue
    fi
    cat "$log"
    failed=$((failed + 1))
  done
done
[ "$flaked" -eq 0 ] || echo "fuzz: $flaked target(s) hit the coordinator deadline race and are counted as passed"
echo "fuzz: $((passed + flaked)) passed, $failed failed"
[ "$failed" -eq 0 ]
