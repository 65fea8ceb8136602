#!/usr/bin/env bash
# Creates the Python virtual environment the audit interoperability tests use to decode
# Sluice's Avro with an implementation that is not avsc (fastavro), in the cache kept
# between runs:
#   $SLUICE_CACHE/py     (default ~/.cache/sluice/py)
#
# Usage: scripts/provision-python.sh
#
# Idempotent: the venv has a stamp with its requirements; a matching stamp skips the
# install. Safe to run concurrently (flock). Needs python3 with the venv module (Debian:
# python3-venv, installed here with apt-get when missing). PyPI must be reachable on the
# first run. Progress goes to stderr; stdout gets one line for the tests:
#   SLUICE_PYTHON=<venv python>
set -euo pipefail

CACHE="${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}"
VENV="$CACHE/py"
REQUIREMENTS="fastavro==1.12.2"

log() { printf 'provision-python: %s\n' "$*" >&2; }
die() { printf 'provision-python: %s\n' "$*" >&2; exit 1; }

mkdir -p "$CACHE"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.provision-python.lock"
  flock 9
fi

python="$VENV/bin/python"
stamp="$VENV/.stamp"
want="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true) $REQUIREMENTS"

if [ -x "$python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$python" -c 'import fastavro' 2>/dev/null; then
  log "fastavro: cached in $VENV"
else
  command -v python3 >/dev/null 2>&1 || die "python3 not found: install Debian package python3"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    # Debian ships venv's pip bootstrap separately
    if command -v apt-get >/dev/null 2>&1 && command -v dpkg-query >/dev/null 2>&1; then
      sudo_cmd=()
      [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
      log "installing Debian package python3-venv"
      "${sudo_cmd[@]}" apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3-venv >&2
    fi
    python3 -c 'import venv, ensurepip' 2>/dev/null || die "python3 has no venv/ensurepip: install Debian package python3-venv"
  fi
  log "creating $VENV with $REQUIREMENTS"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$python" -m pip install --quiet --disable-pip-version-check --no-input $REQUIREMENTS >&2
  "$python" -c 'import fastavro; print("provision-python: fastavro", fastavro.__version__)' >&2
  printf '%s\n' "$want" >"$stamp"
fi

printf 'SLUICE_PYTHON=%s\n' "$python"
