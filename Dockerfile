# fluxwatch: the dependencies from the hash-pinned lock in a layer of their own, then the
# package; a runtime stage with the virtualenv, openssl (the demo's embedded cluster serves
# TLS) and nothing to build with. Runs as a non-root UID and writes nothing outside /tmp.
#
#   docker buildx build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" \
#     -t ghcr.io/fluxwatch/fluxwatch:0.1.0 .
#
# The base image, by the digest of its multi-platform index (the tag stays for people; the
# digest wins, so a rebuild gets the same bytes). This one is Python 3.11.16 on the Debian
# bookworm snapshot of 2026-08-24, as the Docker Official Images' docker-library/repo-info
# records the tag (repos/python/remote/3.11-slim-bookworm.md at commit 33a22f41ac7b: an
# application/vnd.oci.image.index.v1+json for linux/amd64, arm/v7, arm64/v8, 386 and
# ppc64le). To bump it, on a machine that reaches Docker Hub:
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
# and write that index digest into both FROM lines. README, "Releases", says when.
FROM python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A C compiler for the native watch reader (fluxwatch/kube/_hrwire.c), in this stage only;
# the image's Python headers are the base image's own. Unpinned as in the runtime stage.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
# The runtime virtualenv has no pip: the base image's pip installs into it.
RUN python -m venv --without-pip /opt/fluxwatch \
 && python -m venv /opt/wheelbuild
WORKDIR /src
# Dependencies first: this layer is rebuilt only when a lock file changes, not with the code.
COPY requirements.lock requirements-build.lock ./
RUN pip --python /opt/fluxwatch/bin/python install --require-hashes --no-deps --only-binary=:all: \
      -r requirements.lock \
 && /opt/wheelbuild/bin/pip install --require-hashes --no-deps -r requirements-build.lock
COPY pyproject.toml README.md LICENSE ./
COPY fluxwatch ./fluxwatch
ARG VERSION=0.1.0
ARG REVISION=unknown
# The revision goes into the package (fluxwatch --version, build_info); a VERSION that is
# not the package's own stops the build, so the image label cannot disagree with it. The
# native reader is optional to pip (an install without a compiler goes on), not to the
# image: one that reads watch lines in Python stops the build.
RUN printf '%s\n' "${REVISION}" > fluxwatch/REVISION \
 && /opt/wheelbuild/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
 && pip --python /opt/fluxwatch/bin/python install --no-deps /tmp/wheels/fluxwatch-*.whl \
 && test "$(/opt/fluxwatch/bin/fluxwatch --version | cut -d' ' -f2)" = "${VERSION}" \
 && /opt/fluxwatch/bin/fluxwatch --version | grep -q 'native watch reader)$' \
 && /opt/fluxwatch/bin/python -m compileall -q /opt/fluxwatch

FROM python:3.11-slim-bookworm@sha256:0bee7276f83efd4a1ee05bbbf4281d95ed28e079220a9457f25a93e3f1e3c31b
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="fluxwatch" \
      org.opencontainers.image.description="Recovers Flux HelmReleases stuck at Ready=Unknown; watches the Flux controllers' leader-election Leases." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/fluxwatch/fluxwatch" \
      org.opencontainers.image.licenses="Apache-2.0"
# openssl makes the embedded cluster's throwaway certificate (`fluxwatch demo`, `sim serve`).
# Debian's security updates replace package versions, so pinning one would break rebuilds;
# the base image's digest is what pins the distribution.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/fluxwatch/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/fluxwatch /opt/fluxwatch
USER 65532:65532
EXPOSE 8080 9440
# `fluxwatch run` by default; other subcommands (scan, doctor, check-config, test-alert,
# demo) replace the CMD, e.g. `kubectl run --image=... fluxwatch-doctor -- doctor`. The
# Deployment passes `run --config=... --metrics-addr=... --health-addr=...` as its args.
ENTRYPOINT ["fluxwatch"]
CMD ["run"]
