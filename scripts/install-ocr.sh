#!/bin/sh
# Install Debian's Tesseract with Korean and English data (text in images, crawler/hashing/ocr.py),
# and CJK fonts (the OCR tests draw Korean text on generated images). Runs as root; does nothing
# when everything is already there. Without it tgwatch records OCR as unavailable and the tests skip.
set -eu
if command -v tesseract >/dev/null 2>&1 && tesseract --list-langs 2>/dev/null | grep -qx kor \
    && tesseract --list-langs 2>/dev/null | grep -qx eng && fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
    echo "tesseract (kor, eng) and CJK fonts already installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-ocr.sh must run as root (apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-kor tesseract-ocr-eng fonts-noto-cjk
