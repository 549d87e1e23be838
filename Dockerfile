# syntax=docker/dockerfile:1
#
# teleport-cloud-exporter image: the exporter in a virtualenv on Python 3.11 (Debian 12), plus the
# Teleport Enterprise `tctl` it runs for `tctl inventory ls`. Build:
#   docker build -t teleport-cloud-exporter:0.1.0 .
# Keep TELEPORT_VERSION at the tenants' major version (or one below): tctl must not be newer than
# the cluster it talks to.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG TELEPORT_VERSION=18.1.4

# --- 1. build the wheel --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --no-deps -w /dist .

# --- 2. tctl from Teleport's own image (same Debian 12 glibc as the Python base) ----------------
FROM public.ecr.aws/gravitational/teleport-ent-distroless:${TELEPORT_VERSION} AS teleport

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
    && rm -rf /var/lib/apt/lists/*

# A fixed non-root UID/GID (65532, as distroless' "nonroot"), shared with the tbot sidecar so the
# exporter can read the identity file tbot writes with mode 0600.
RUN groupadd --system --gid 65532 exporter \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /var/lib/teleport-cloud-exporter --shell /usr/sbin/nologin exporter \
    && install -d -o 65532 -g 65532 -m 0750 /var/lib/teleport-cloud-exporter \
    && install -d -m 0755 /etc/teleport-cloud-exporter

# The wheel's dependencies come from PyPI at their newest compatible versions (pyproject.toml).
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /dist/*.whl

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
