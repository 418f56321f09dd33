# Shared helpers for scripts/test and scripts/devnet. Sourced, not executed.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/node_modules/.bin:$PATH"
# One target dir for the whole workspace, wherever the scripts are called from.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# A CI run starts from a clean clone and builds once: incremental state would only cost disk
# (gigabytes over the workspace's test binaries) and time.
if [[ -n "${CI:-}" ]]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is required: $2"
}

# Installs the pinned npm toolchain (forge, anvil, cast, solc-js, OpenZeppelin) from
# package-lock.json when it is missing or stale. `npm ci` is exact and never rewrites the lockfile.
ensure_npm() {
  need node "install Node.js 20+ (the machine's apt or nodejs.org)"
  need npm "install npm (comes with Node.js)"
  local stamp="$ROOT/node_modules/.package-lock.json"
  if [[ ! -x "$ROOT/node_modules/.bin/forge" || ! -f "$stamp" || "$ROOT/package-lock.json" -nt "$stamp" ]]; then
    step "npm ci (Foundry, solc-js, OpenZeppelin; Vite, TypeScript, playwright-core for the dashboard)"
    (cd "$ROOT" && npm ci --no-audit --no-fund) || die "npm ci failed"
  fi
  # The npm packages ship the binaries; make sure they are executable (npm preserves modes, but a
  # copied tree may not).
  local pkg bin
  for pkg in forge anvil cast; do
    bin="$ROOT/node_modules/@foundry-rs/$pkg-linux-amd64/bin/$pkg"
    [[ -f "$bin" && ! -x "$bin" ]] && chmod +x "$bin"
  done
  forge --version >/dev/null 2>&1 || die "forge from node_modules does not run"
}

ensure_cargo() {
  need cargo "install Rust with rustup (https://rustup.rs)"
}

ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    step "cargo install cargo-nextest"
    cargo install cargo-nextest --locked || die "could not install cargo-nextest"
  fi
}

# A project-local Python tool: the venv .venv/NAME with every package pinned in
# scripts/NAME-requirements.txt, (re)installed from PyPI when missing or older than that file.
# ensure_venv NAME EXECUTABLE
ensure_venv() {
  need python3 "install Python 3.10+ with its venv module (apt: python3-venv)"
  local venv="$ROOT/.venv/$1" req="$ROOT/scripts/$1-requirements.txt"
  local stamp="$ROOT/.venv/$1/.installed"
  if [[ ! -x "$venv/bin/$2" || ! -f "$stamp" || "$req" -nt "$stamp" ]]; then
    step "pip install $1 (into .venv/$1, pinned in scripts/$1-requirements.txt)"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "could not create $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" ||
      die "could not install $1 from PyPI"
    touch "$stamp"
  fi
}

# Debian's chromium, which the dashboard's browser test (tests/browser/dashboard.mjs, through
# npm's playwright-core, which never downloads a browser of its own) drives: installed with apt
# when /usr/bin/chromium is missing, with sudo when not root.
ensure_chromium() {
  [[ -x /usr/bin/chromium ]] && return 0
  need apt-get "install Debian's chromium package (the dashboard's browser test drives it)"
  local sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  step "apt-get install chromium (the dashboard's browser test)"
  "${sudo[@]}" apt-get update -qq || die "apt-get update failed"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ||
    die "could not install chromium with apt"
  [[ -x /usr/bin/chromium ]] || die "apt installed chromium but /usr/bin/chromium is missing"
}

# Debian's PostgreSQL server binaries (initdb, postgres, pg_isready, createdb, psql), which the
# tests of the operator's PostgreSQL store, its leader election and the failover e2e (issue #21)
# start a throwaway server from (test-postgres/: its own cluster in a temp directory on a loopback
# port, stopped when the test ends; never the package's own cluster or service). Installed with
# apt when initdb is neither under /usr/lib/postgresql/*/bin nor on PATH, with sudo when not root.
# The package also creates the `postgres` user the throwaway servers run as under root.
have_initdb() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null 2>&1
}
ensure_postgres() {
  have_initdb && return 0
  need apt-get "install Debian's postgresql package (the PostgreSQL store's tests run a throwaway server)"
  local sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  step "apt-get install postgresql (the PostgreSQL store's and the failover tests' throwaway servers)"
  "${sudo[@]}" apt-get update -qq || die "apt-get update failed"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql ||
    die "could not install postgresql with apt"
  have_initdb || die "apt installed postgresql but initdb is not under /usr/lib/postgresql/*/bin"
}

# slither for scripts/slither (.venv/slither).
SLITHER_VENV="$ROOT/.venv/slither"
ensure_slither() { ensure_venv slither slither; }

# schemathesis for scripts/schemathesis (.venv/schemathesis).
SCHEMATHESIS_VENV="$ROOT/.venv/schemathesis"
ensure_schemathesis() { ensure_venv schemathesis schemathesis; }
