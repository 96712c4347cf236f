#!/usr/bin/env bash
# Makes sure every tool in scripts/test-tools.txt is on PATH before the suite runs, so that no
# test is skipped or fails for a missing program. As root with apt it installs what is missing;
# otherwise it stops at once and prints the exact command to run.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r command package; do
  case "$command" in '' | '#'*) continue ;; esac
  command -v "$command" >/dev/null 2>&1 || missing+=("$package")
done <scripts/test-tools.txt
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing the tools the tests need: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "The tests need these Debian packages; install them, then run make test again:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
