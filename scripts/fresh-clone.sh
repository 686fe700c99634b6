#!/usr/bin/env bash
# Reproduces a newcomer's first steps on a fresh clone and times them:
#   git clone → `make run` until /readyz answers 200 → (with --test) `make test`.
#
#   scripts/fresh-clone.sh [--cold] [--test] [--repo DIR|URL] [--ref REF] [--timeout SECONDS] [--keep]
#
# --cold   empty GOCACHE and GOMODCACHE in the temp dir: every module (and the Go toolchain
#          named by GOTOOLCHAIN) is downloaded and everything is compiled, as on a new machine.
#          Without it the caches of this machine are used (warm).
# --test   also run `make test` in the clone (minutes; needs what scripts/test-deps.sh installs).
# --repo   what to clone (default: this checkout; only committed work is cloned).
# --ref    branch or commit to check out (default: the current branch of --repo).
# --keep   leave the temp dir for inspection.
#
# `make run` is started with RUN_ARGS pointing at a copy of the embedded default config whose
# gRPC and admin ports are free ones, so it does not collide with a service already running.
# Prints lines "clone: Ns", "make run ready: Ns (cold|warm caches)", "make test: Ns (...)".
set -euo pipefail

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
ref=""
cold=0 test=0 keep=0 timeout=1800
while [ $# -gt 0 ]; do
  case "$1" in
    --cold) cold=1 ;;
    --test) test=1 ;;
    --keep) keep=1 ;;
    --repo) repo=$2; shift ;;
    --ref) ref=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fresh-clone: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$ref" ] && [ -d "$repo" ]; then
  ref=$(git -C "$repo" rev-parse --abbrev-ref HEAD)
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mcpguard-fresh.XXXXXX")
runpid=""
cleanup() {
  if [ -n "$runpid" ] && kill -0 "$runpid" 2>/dev/null; then
    kill -TERM -- "-$runpid" 2>/dev/null || true
    wait "$runpid" 2>/dev/null || true
  fi
  if [ "$keep" = 1 ]; then
    echo "kept $tmp"
  else
    chmod -R u+w "$tmp" 2>/dev/null || true
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

caches="warm caches"
if [ "$cold" = 1 ]; then
  export GOCACHE="$tmp/gocache" GOMODCACHE="$tmp/gomodcache" GOFLAGS="${GOFLAGS:-} -modcacherw"
  caches="cold caches"
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

t0=$(now)
git clone --quiet ${ref:+--branch "$ref"} "$repo" "$tmp/mcpguard" 2>/dev/null ||
  { git clone --quiet "$repo" "$tmp/mcpguard" && git -C "$tmp/mcpguard" checkout --quiet "$ref"; }
echo "clone: $(since "$t0")s"
cd "$tmp/mcpguard"

# Two free loopback ports for gRPC and admin.
freeport() {
  local p
  while :; do
    p=$(( 20000 + RANDOM % 40000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; } # refused: free
  done
}
grpc=$(freeport) admin=$(freeport)
while [ "$admin" = "$grpc" ]; do admin=$(freeport); done
sed -e "s/127\.0\.0\.1:9001/127.0.0.1:$grpc/g" -e "s/127\.0\.0\.1:9002/127.0.0.1:$admin/g" \
  internal/config/default.yaml >"$tmp/config.yaml"

t0=$(now)
set -m # make run in its own process group, so cleanup stops make, go and mcpguard together
make run RUN_ARGS="--config $tmp/config.yaml" >"$tmp/run.log" 2>&1 &
runpid=$!
set +m
deadline=$(( $(date +%s) + timeout ))
until curl -fsS -o /dev/null "http://127.0.0.1:$admin/readyz" 2>/dev/null; do
  if ! kill -0 "$runpid" 2>/dev/null; then
    echo "make run exited before /readyz answered; last lines:" >&2
    tail -n 30 "$tmp/run.log" >&2
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "make run: /readyz not ready within ${timeout}s; last lines:" >&2
    tail -n 30 "$tmp/run.log" >&2
    exit 1
  fi
  sleep 0.5
done
echo "make run ready: $(since "$t0")s ($caches)"
kill -TERM -- "-$runpid" 2>/dev/null || true
wait "$runpid" 2>/dev/null || true
runpid=""

if [ "$test" = 1 ]; then
  t0=$(now)
  if make test >"$tmp/test.log" 2>&1; then
    echo "make test: $(since "$t0")s ($caches)"
  else
    echo "make test failed after $(since "$t0")s; last lines:" >&2
    tail -n 40 "$tmp/test.log" >&2
    exit 1
  fi
fi
