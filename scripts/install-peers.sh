#!/bin/sh
# Installs the third-party programs the end-to-end tests and benchmarks run against
# (test/harness/): libtorrent's Python binding, Transmission, aria2, opentracker and mktorrent, and
# Debian's Chromium for the dashboard's browser test (never a browser downloaded by a test tool),
# and miniupnpd with nftables and iproute2 for the port-forwarding test (which runs them in a
# network namespace of its own, never in the machine's).
#
# Runs before every `npm test`, so it does nothing (and needs no root) when every program already
# works. Otherwise it installs the missing Debian packages with apt-get, as root or through sudo.
#
# The packages ship system services (transmission-daemon, opentracker, miniupnpd) that would listen
# on all interfaces, reach public hosts or change the firewall. A temporary /usr/sbin/policy-rc.d
# forbids every service start during the install, so only the tests' own instances ever run.
set -eu

PYTHON=/usr/bin/python3
POLICY=/usr/sbin/policy-rc.d

# "package:check" pairs; the check is a shell command that succeeds when the program is usable.
# libtorrent's binding exists only for Debian's interpreter, never for a python3 found on PATH.
CHECKS="python3-libtorrent:$PYTHON -c 'import libtorrent'
transmission-daemon:transmission-daemon --version
aria2:aria2c --version
opentracker:command -v opentracker
mktorrent:command -v mktorrent
chromium:test -x /usr/bin/chromium
miniupnpd-nftables:test -x /usr/sbin/miniupnpd
nftables:test -x /usr/sbin/nft
iproute2:test -x /usr/sbin/ip || test -x /bin/ip"

usable() {
  sh -c "$1" >/dev/null 2>&1
}

missing_packages() {
  printf '%s\n' "$CHECKS" | while IFS=: read -r pkg check; do
    usable "$check" || printf '%s ' "$pkg"
  done
}

fail() {
  echo "install-peers: $*" >&2
  exit 1
}

need=$(missing_packages)
if [ -n "$need" ]; then
  command -v apt-get >/dev/null 2>&1 ||
    fail "missing: $need; this script installs them with apt-get (Debian 12); install them by hand elsewhere"
  if [ "$(id -u)" = 0 ]; then
    as_root=""
  elif command -v sudo >/dev/null 2>&1; then
    # Without a terminal a password prompt would hang `npm test`: fail instead.
    if [ -t 0 ]; then as_root="sudo"; else as_root="sudo -n"; fi
  else
    fail "missing: $need; installing needs root, and sudo is not available: run 'sh scripts/install-peers.sh' as root"
  fi

  created_policy=0
  remove_policy() {
    if [ "$created_policy" = 1 ]; then
      $as_root rm -f "$POLICY"
      created_policy=0
    fi
  }
  trap remove_policy EXIT
  trap 'remove_policy; exit 130' INT TERM
  if [ ! -e "$POLICY" ]; then
    # Exit status 101 means "action forbidden" to invoke-rc.d: no service starts during install.
    $as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY && chmod 755 $POLICY" ||
      fail "cannot create $POLICY (needed so the packages' services never start)"
    created_policy=1
  fi

  echo "install-peers: installing $need" >&2
  $as_root apt-get update -qq || fail "apt-get update failed"
  # shellcheck disable=SC2086 # $need is a space-separated package list
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need ||
    fail "apt-get install $need failed"
  remove_policy
fi

still=$(missing_packages)
if [ -n "$still" ]; then
  printf '%s\n' "$CHECKS" | while IFS=: read -r pkg check; do
    usable "$check" || echo "install-peers: $pkg is installed but not usable: '$check' fails" >&2
  done
  fail "the end-to-end tests need: $still"
fi
