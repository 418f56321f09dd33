# Shared helpers for scripts/test and scripts/devnet. Sourced, not executed.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$ROOT/node_modules/.bin:$PATH"
# One target dir for the whole workspace, wherever the scripts are called from.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

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
    step "npm ci (Foundry, solc-js, OpenZeppelin)"
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

# slither for scripts/slither: a project-local venv (.venv/slither) with every package pinned in
# scripts/slither-requirements.txt, (re)installed from PyPI when missing or older than that file.
SLITHER_VENV="$ROOT/.venv/slither"
ensure_slither() {
  need python3 "install Python 3.10+ with its venv module (apt: python3-venv)"
  local req="$ROOT/scripts/slither-requirements.txt" stamp="$SLITHER_VENV/.installed"
  if [[ ! -x "$SLITHER_VENV/bin/slither" || ! -f "$stamp" || "$req" -nt "$stamp" ]]; then
    step "pip install slither-analyzer (into .venv/slither)"
    rm -rf "$SLITHER_VENV"
    python3 -m venv "$SLITHER_VENV" || die "could not create $SLITHER_VENV"
    "$SLITHER_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req" ||
      die "could not install slither from PyPI"
    touch "$stamp"
  fi
}

# schemathesis for scripts/schemathesis: a project-local venv (.venv/schemathesis) with every
# package pinned in scripts/schemathesis-requirements.txt, (re)installed from PyPI when missing or
# older than that file.
SCHEMATHESIS_VENV="$ROOT/.venv/schemathesis"
ensure_schemathesis() {
  need python3 "install Python 3.10+ with its venv module (apt: python3-venv)"
  local req="$ROOT/scripts/schemathesis-requirements.txt" stamp="$SCHEMATHESIS_VENV/.installed"
  if [[ ! -x "$SCHEMATHESIS_VENV/bin/schemathesis" || ! -f "$stamp" || "$req" -nt "$stamp" ]]; then
    step "pip install schemathesis (into .venv/schemathesis)"
    rm -rf "$SCHEMATHESIS_VENV"
    python3 -m venv "$SCHEMATHESIS_VENV" || die "could not create $SCHEMATHESIS_VENV"
    "$SCHEMATHESIS_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req" ||
      die "could not install schemathesis from PyPI"
    touch "$stamp"
  fi
}
