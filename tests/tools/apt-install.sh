#!/usr/bin/env bash
# tests/tools/apt-install.sh WHY PACKAGE…: what `just _apt_install` runs. Install Debian or Ubuntu
# packages, for WHY (such as "just bench"), with apt-get, as root: through sudo unless we are root.
set -euo pipefail
why=$1
shift
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
command -v apt-get >/dev/null || { echo "$why needs $*: install them with your package manager" >&2; exit 1; }
echo "installing $* with apt-get, for $why" >&2
# Without the one harmless line every install prints when apt-utils is missing.
as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" \
    2> >(grep -v '^debconf: delaying package configuration' >&2) >/dev/null
