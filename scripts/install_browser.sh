#!/usr/bin/env bash
# Chromium for the browser tests (tests/test_console_browser.py), from Debian's own packages.
# Playwright's downloaded browsers are not used: the tests launch this binary directly.
#
# Idempotent: does nothing when the browser is already there.
#   - missing, running as root with apt-get: `apt-get update` (once) and `apt-get install -y chromium`;
#   - missing otherwise: says what to do, and fails when CI is set (CI=true), warns and succeeds if not
#     (the browser tests then skip, saying why).
# CHROMIUM_PATH overrides where the browser is expected (default /usr/bin/chromium).
# Also, best effort and never fatal: a Chinese font (fonts-wqy-zenhei), so that the bilingual pages
# are legible in screenshots; Debian's chromium package does not pull one in.
set -euo pipefail

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
case "${CI:-}" in
  1 | true | TRUE | True | yes) in_ci=1 ;;
  *) in_ci=0 ;;
esac

have_browser() {
  [ -x "$CHROMIUM_PATH" ]
}

give_up() {
  echo "install_browser: $1" >&2
  echo "install_browser: install it with: sudo apt-get update && sudo apt-get install -y chromium" >&2
  echo "install_browser: (or point CHROMIUM_PATH at a Chromium binary)" >&2
  if [ "$in_ci" = 1 ]; then
    echo "install_browser: CI is set, so this is an error: the browser tests must not skip in CI." >&2
    exit 1
  fi
  echo "install_browser: WARNING: continuing without it; the browser tests will be skipped." >&2
  exit 0
}

apt_updated=0
apt_update_once() {
  [ "$apt_updated" = 1 ] && return 0
  apt-get update -q && apt_updated=1
}

ensure_cjk_font() {
  command -v fc-list >/dev/null 2>&1 || return 0
  [ -n "$(fc-list :lang=zh 2>/dev/null | head -n 1)" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: installing a Chinese font (fonts-wqy-zenhei)"
    if apt_update_once && apt-get install -y -q --no-install-recommends fonts-wqy-zenhei; then
      return 0
    fi
  fi
  echo "install_browser: note: no Chinese font installed; Chinese labels show as boxes in screenshots" >&2
  echo "install_browser: (sudo apt-get install -y fonts-wqy-zenhei). The tests do not need it." >&2
}

export DEBIAN_FRONTEND=noninteractive

if have_browser; then
  echo "install_browser: Chromium is present at $CHROMIUM_PATH"
  ensure_cjk_font
  exit 0
fi

if [ "$CHROMIUM_PATH" != /usr/bin/chromium ]; then
  give_up "no executable at CHROMIUM_PATH=$CHROMIUM_PATH."
fi
if ! command -v apt-get >/dev/null 2>&1; then
  give_up "Chromium is missing at $CHROMIUM_PATH and this system has no apt-get."
fi
if [ "$(id -u)" != 0 ]; then
  give_up "Chromium is missing at $CHROMIUM_PATH and installing it needs root (this runs as $(id -un))."
fi

echo "install_browser: installing Debian's chromium package"
if ! apt_update_once; then
  give_up "apt-get update failed."
fi
if ! apt-get install -y -q --no-install-recommends chromium; then
  give_up "apt-get install chromium failed."
fi
if ! have_browser; then
  give_up "the chromium package was installed but $CHROMIUM_PATH is still missing."
fi
echo "install_browser: installed $("$CHROMIUM_PATH" --version 2>/dev/null || echo chromium)"
ensure_cjk_font
