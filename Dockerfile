# fluxwatch: multi-stage build on a slim Python base; runs as a non-root UID
# and needs no writable root filesystem (no bytecode writes, no home writes).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fluxwatch ./fluxwatch
RUN python -m venv /opt/fluxwatch \
 && /opt/fluxwatch/bin/pip install --upgrade pip \
 && /opt/fluxwatch/bin/pip install . \
 && /opt/fluxwatch/bin/python -m compileall -q /opt/fluxwatch

FROM python:3.11-slim-bookworm
ENV PATH=/opt/fluxwatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/fluxwatch /opt/fluxwatch
USER 65532:65532
EXPOSE 8080 9440
# `fluxwatch run` by default; other subcommands (doctor, scan, check-config) replace
# the CMD, e.g. `kubectl run --image=... fluxwatch-doctor -- doctor`. The Deployment
# passes `run --config /etc/fluxwatch/config.yaml` as its args.
ENTRYPOINT ["fluxwatch"]
CMD ["run"]
