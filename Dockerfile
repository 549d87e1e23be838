# syntax=docker/dockerfile:1
#
# teleport-cloud-exporter image: the exporter in a virtualenv on Python 3.11 (Debian 12), plus the
# Teleport Enterprise `tctl` it runs for `tctl inventory ls`. Build:
#   docker build -t teleport-cloud-exporter:0.1.0 .
# Keep TELEPORT_VERSION at the tenants' major version (or one below): tctl must not be newer than
# the cluster it talks to. Every base image is a build argument, so a build can substitute
# mirrored or stand-in images (tests/system/test_container.py builds with stand-ins made from Debian).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG TELEPORT_IMAGE=public.ecr.aws/gravitational/teleport-ent-distroless
ARG TELEPORT_VERSION=18.1.4

# --- 1. the virtualenv: locked, hash-checked dependencies, then the project's wheel -------------
FROM ${PYTHON_IMAGE} AS build
# The CA bundle pip trusts; a build behind a TLS-inspecting proxy mounts the host's and points here.
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# requirements.lock pins every distribution with its sha256 (scripts/lock.py): two builds a month
# apart install the same bytes, or the build fails.
COPY requirements.lock ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN /opt/venv/bin/pip wheel --no-deps -w /dist . \
    && /opt/venv/bin/pip install --no-deps --no-index /dist/*.whl \
    && /opt/venv/bin/pip check

# --- 2. tctl from Teleport's own image (same Debian 12 glibc as the Python base) ----------------
FROM ${TELEPORT_IMAGE}:${TELEPORT_VERSION} AS teleport

# --- 3. runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
ARG SOURCE_URL=""
LABEL org.opencontainers.image.title="teleport-cloud-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Teleport Enterprise Cloud tenants: agent version skew, update enrolment, proxy probe, status page and monthly SLA" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"

# tini as PID 1 reaps what tctl's killed process group leaves behind (the exporter kills the
# whole group on timeout; orphans are re-parented to PID 1, which must wait for them).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# A fixed non-root UID/GID (65532, as distroless' "nonroot"), shared with the tbot sidecar so the
# exporter can read the identity file tbot writes with mode 0600.
RUN groupadd --system --gid 65532 exporter \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /var/lib/teleport-cloud-exporter --shell /usr/sbin/nologin exporter \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/teleport-cloud-exporter \
    && install -d -m 0755 /etc/teleport-cloud-exporter

# The same base as the build stage, so the venv's interpreter path holds here too.
COPY --from=build /opt/venv /opt/venv
COPY --from=teleport /usr/local/bin/tctl /usr/local/bin/tctl

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TELEPORT_TOOLS_VERSION=off

WORKDIR /var/lib/teleport-cloud-exporter
VOLUME ["/var/lib/teleport-cloud-exporter"]
EXPOSE 10437
USER 65532:65532

ENTRYPOINT ["/usr/bin/tini", "--", "teleport-cloud-exporter"]
CMD ["serve", "--config", "/etc/teleport-cloud-exporter/config.yaml"]
