# tgwatch: one image for every role (scheduler, worker, API, detector); the command picks the role.
#
#   docker build -t tgwatch .
#   docker run --rm tgwatch --help
#
# Two stages: wheels are built with the compiler toolchain, the runtime image has none of it.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY config ./config
COPY foundation ./foundation
COPY crawler ./crawler
COPY spiders ./spiders
COPY storage ./storage
COPY telegram_watch ./telegram_watch
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# ffmpeg libraries come with the PyAV wheel; tini reaps zombies and forwards SIGTERM to tgwatch,
# whose first SIGTERM finishes (or, after --grace, abandons) the crawls in flight. Tesseract (kor,
# eng) reads text in images (docs/captures.md); Chromium for screenshots is left out (optional).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini ca-certificates tesseract-ocr tesseract-ocr-kor tesseract-ocr-eng \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/tgwatch --uid 10001 tgwatch
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# Docker/compose secrets mounted as /run/secrets/TGWATCH_* become environment variables of the same
# name (e.g. TGWATCH_TELEGRAM__API_HASH), so secret values never sit in the compose file or image.
RUN printf '%s\n' '#!/bin/sh' \
      'for f in /run/secrets/TGWATCH_*; do [ -f "$f" ] && export "$(basename "$f")=$(cat "$f")"; done' \
      'exec tgwatch "$@"' > /usr/local/bin/tgwatch-entry \
 && chmod 755 /usr/local/bin/tgwatch-entry
USER tgwatch
WORKDIR /var/lib/tgwatch
ENV TGWATCH_DATA_DIR=/var/lib/tgwatch/data \
    TGWATCH_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
EXPOSE 8080 9400
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/tgwatch-entry"]
CMD ["--help"]
