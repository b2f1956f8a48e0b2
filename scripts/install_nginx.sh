#!/usr/bin/env bash
# nginx for the reference-deployment test (tests/test_deploy_nginx.py), from Debian's own packages.
#
# Idempotent: does nothing when nginx is already there.
#   - missing, running as root with apt-get: `apt-get update` and `apt-get install -y nginx-light`
#     (falling back to `nginx`). The package's own service is not started: the test runs its own
#     nginx in a private prefix (policy-rc.d on CI images usually forbids starting it anyway);
#   - missing otherwise: says what to do, and fails when CI is set (CI=true), warns and succeeds if
#     not (the deployment test then skips, saying why).
# NGINX_PATH overrides where nginx is expected (default: nginx on PATH, or /usr/sbin/nginx).
set -euo pipefail

case "${CI:-}" in
  1 | true | TRUE | True | yes) in_ci=1 ;;
  *) in_ci=0 ;;
esac

find_nginx() {
  if [ -n "${NGINX_PATH:-}" ]; then
    [ -x "$NGINX_PATH" ] && echo "$NGINX_PATH"
    return 0
  fi
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

give_up() {
  echo "install_nginx: $1" >&2
  echo "install_nginx: install it with: sudo apt-get update && sudo apt-get install -y nginx-light" >&2
  echo "install_nginx: (or point NGINX_PATH at an nginx binary)" >&2
  if [ "$in_ci" = 1 ]; then
    echo "install_nginx: CI is set, so this is an error: the deployment test must not skip in CI." >&2
    exit 1
  fi
  echo "install_nginx: WARNING: continuing without it; the deployment test will be skipped." >&2
  exit 0
}

found="$(find_nginx)"
if [ -n "$found" ]; then
  echo "install_nginx: nginx is present at $found"
  exit 0
fi
if [ -n "${NGINX_PATH:-}" ]; then
  give_up "no executable at NGINX_PATH=$NGINX_PATH."
fi
if ! command -v apt-get >/dev/null 2>&1; then
  give_up "nginx is missing and this system has no apt-get."
fi
if [ "$(id -u)" != 0 ]; then
  give_up "nginx is missing and installing it needs root (this runs as $(id -un))."
fi

export DEBIAN_FRONTEND=noninteractive
echo "install_nginx: installing Debian's nginx"
apt-get update -q || give_up "apt-get update failed."
if ! apt-get install -y -q --no-install-recommends nginx-light; then
  apt-get install -y -q --no-install-recommends nginx || give_up "apt-get install nginx failed."
fi
found="$(find_nginx)"
[ -n "$found" ] || give_up "the nginx package was installed but no nginx binary was found."
echo "install_nginx: installed $("$found" -v 2>&1)"
