#!/bin/sh
# Install Debian's Chromium for the console browser test (no browser download by Playwright), and
# CJK fonts so Korean/Japanese/Chinese text renders in its screenshots instead of empty boxes.
# Runs as root (CI containers, dev images); does nothing when both are already there.
set -eu
if [ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    echo "chromium and CJK fonts already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser.sh must run as root (apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium fonts-noto-cjk
