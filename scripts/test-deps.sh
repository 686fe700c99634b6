#!/usr/bin/env bash
# Obtains what `make test` needs on a fresh machine, and says in one line what it installs.
#
#   Debian packages  gcc + libc6-dev (cgo: the Postgres parser, -race), redis-server (the Redis
#                    approvals and session stores), chromium (the approvals page in a headless browser),
#                    bubblewrap + strace + busybox (the shell ground-truth sandbox in e2e/groundtruth)
#                    postgresql and mariadb-server (the SQL classifier judged by real execution,
#                    e2e/groundtruth)
#   Go tools         versitygw (a real S3-compatible server for the recordings tests) and jaeger (a
#                    real trace backend for the tracing tests, pinned in tools/jaeger/go.mod), built
#                    from the Go module proxy into the repository's bin/, which the Makefile puts
#                    first on PATH
#
# A missing package is installed with apt-get when running as root, or through sudo when sudo
# works without a password; otherwise it stops with one sentence naming what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=$PWD/bin

# Each entry is "command package": the package provides the command.
need=(
  "gcc gcc"
  "curl curl"
  "redis-server redis-server"
  "chromium chromium"
  "bwrap bubblewrap"
  "strace strace"
  "busybox busybox"
  "initdb postgresql"
  "mariadbd mariadb-server"
)
missing=()
for entry in "${need[@]}"; do
  cmd=${entry%% *} pkg=${entry#* }
  command -v "$cmd" >/dev/null 2>&1 && continue
  # Some distributions name the browser chromium-browser.
  [ "$cmd" = chromium ] && command -v chromium-browser >/dev/null 2>&1 && continue
  # Debian keeps the PostgreSQL server binaries off PATH, and mariadbd in /usr/sbin.
  [ "$cmd" = initdb ] && compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && continue
  [ "$cmd" = mariadbd ] && [ -x /usr/sbin/mariadbd ] && continue
  missing+=("$pkg")
done
# cgo needs the C library headers next to gcc.
[ -e /usr/include/stdio.h ] || missing+=(libc6-dev)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "test-deps: missing ${missing[*]}: install them (e.g. sudo apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
  echo "test-deps: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq >/dev/null
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# versitygw is pinned here and built rather than added to go.mod: it is a test server, not a
# dependency of mcpguard.
VERSITYGW=github.com/versity/versitygw/cmd/versitygw@v1.8.0
if ! command -v versitygw >/dev/null 2>&1 && [ ! -x "$BIN/versitygw" ]; then
  echo "test-deps: building versitygw (${VERSITYGW#*@}) into bin/"
  mkdir -p "$BIN"
  GOFLAGS= GOBIN="$BIN" $GO install "$VERSITYGW"
fi

# Jaeger is pinned with its whole dependency graph in a module of its own (tools/jaeger), so
# the build is reproducible and cannot move mcpguard's or the linters' versions. A cold build
# downloads and compiles a large tree (minutes); it runs once, then bin/jaeger is reused.
if ! command -v jaeger >/dev/null 2>&1 && [ ! -x "$BIN/jaeger" ]; then
  echo "test-deps: building jaeger ($(awk '$1=="github.com/jaegertracing/jaeger"{print $2}' tools/jaeger/go.mod)) into bin/ (a few minutes on a cold cache)"
  mkdir -p "$BIN"
  (cd tools/jaeger && GOFLAGS= CGO_ENABLED=0 $GO build -o "$BIN/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger)
fi
