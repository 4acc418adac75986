#!/bin/sh
# Meta's reference vPDQ (the `vpdq` sdist) for bench/vpdq_compat.py: its C++ build needs cmake, a
# compiler and FFmpeg's development libraries (Debian packages). Root only; the compat check and its
# test skip with a reason when `import vpdq` fails.
set -eu
PY="${1:-.venv/bin/python}"
if [ "$(id -u)" != 0 ]; then
    echo "install-vpdq.sh: run as root (apt-get); the vPDQ compatibility check will skip" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    build-essential cmake pkg-config ffmpeg \
    libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavdevice-dev libavfilter-dev
"$PY" -m pip install --no-binary vpdq "vpdq==0.2.5"
"$PY" -c "import vpdq; print('vpdq', getattr(vpdq, '__version__', '?'), 'ready')"
