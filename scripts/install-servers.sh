#!/usr/bin/env bash
# Makes sure beanstalkd, redis-server and redis-cli are on PATH, installing
# them with the system package manager when they are missing.
set -euo pipefail

need=()
command -v beanstalkd >/dev/null 2>&1 || need+=(beanstalkd)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-cli)
[ ${#need[@]} -eq 0 ] && exit 0

echo "zerodq: missing ${need[*]}; installing" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
		echo "zerodq: not root and no sudo: install beanstalkd and redis by hand" >&2
		exit 1
	fi
fi

if command -v apt-get >/dev/null 2>&1; then
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq beanstalkd redis-server redis-tools >/dev/null
elif command -v brew >/dev/null 2>&1; then
	brew install beanstalkd redis
else
	cat >&2 <<'MSG'
zerodq: cannot install the test servers on this system.
Install these packages with your package manager and run again:
  beanstalkd (>= 1.10)   redis-server and redis-cli (>= 6.2; Debian: redis-server redis-tools)
MSG
	exit 1
fi

# Debian starts the packaged services; the tests start their own on free
# ports, so the system ones are left as the package manager configured them.
for b in beanstalkd redis-server redis-cli; do
	command -v "$b" >/dev/null 2>&1 || { echo "zerodq: $b still missing after install" >&2; exit 1; }
done
