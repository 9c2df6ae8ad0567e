#!/usr/bin/env bash
# Makes sure a headless Chromium for the dashboard's browser tests is
# installed, with Debian's chromium-headless-shell package when it is missing.
# The tests look for it at $ZERODQ_CHROME, then on PATH, then in
# /usr/lib/chromium; set ZERODQ_CHROME to use another Chromium or Chrome.
set -euo pipefail

if [ -n "${ZERODQ_CHROME:-}" ]; then
	[ -x "$ZERODQ_CHROME" ] && exit 0
	echo "zerodq: ZERODQ_CHROME=$ZERODQ_CHROME is not an executable file" >&2
	exit 1
fi
command -v chromium-headless-shell >/dev/null 2>&1 && exit 0
[ -x /usr/lib/chromium/chromium-headless-shell ] && exit 0

echo "zerodq: chromium-headless-shell missing; installing" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
		echo "zerodq: not root and no sudo: install chromium-headless-shell by hand, or set ZERODQ_CHROME" >&2
		exit 1
	fi
fi

if command -v apt-get >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends chromium-headless-shell >/dev/null
else
	cat >&2 <<'MSG'
zerodq: cannot install a headless Chromium on this system.
Install Debian's chromium-headless-shell (or any Chromium or Chrome) and run
again, setting ZERODQ_CHROME to its binary unless chromium-headless-shell is
on PATH.
MSG
	exit 1
fi

command -v chromium-headless-shell >/dev/null 2>&1 || {
	echo "zerodq: chromium-headless-shell still missing after install" >&2
	exit 1
}
