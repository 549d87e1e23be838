# syntax=docker/dockerfile:1
#
# teleport-cloud-exporter image: the exporter in a virtualenv on Python 3.11 (Debian 12), plus the
# Teleport Enterprise `tctl` it runs for `tctl inventory ls`. Build:
#   docker build --build-arg TELEPORT_DIGEST="$(crane digest \
#     public.ecr.aws/gravitational/teleport-ent-distroless:18.1.4)" -t teleport-cloud-exporter:0.1.0 .
# Every base image is pinned by digest: a tag can be re-pointed, a digest cannot. Teleport's digest
# has no default and must be given (the build stops at its FROM otherwise); refresh the Python one
# with `crane digest python:3.11.14-slim-bookworm` when moving to a new patch release.
# Keep TELEPORT_VERSION at the tenants' major version (or one below): tctl must not be newer than
# the cluster it talks to. Every base image is a build argument, so a build can substitute
# mirrored or stand-in images (tests/system/test_container.py builds with stand-ins made from Debian).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
ARG TELEPORT_IMAGE=public.ecr.aws/gravitational/teleport-ent-distroless
ARG TELEPORT_VERSION=18.1.4
ARG TELEPORT_DIGEST=sha256-required--see-the-Dockerfile-header

# --- 1. the virtualenv: locked, hash-checked dependencies, then the project's wheel -------------
FROM ${PYTHON_IMAGE} AS build
# The CA bundle pip trusts; a build behind a TLS-inspecting proxy mounts the host's and points here.
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Both locks pin every distribution with its sha256 (scripts/lock.py): two builds a month apart
# install the same bytes, or the build fails. The build backend (setuptools, wheel) lives in its
# own virtualenv, hash-checked too, and never reaches the served one; the served virtualenv is
# made without pip and filled by the build virtualenv's pip (`--python`).
COPY requirements.lock requirements-build.lock ./
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --only-binary=:all: -r requirements-build.lock \
    && python -m venv --without-pip /opt/venv \
    && /opt/build/bin/pip --python /opt/venv/bin/python install \
       --require-hashes --only-binary=:all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation -w /dist . \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-deps --no-index /dist/*.whl \
    && /opt/build/bin/pip --python /opt/venv/bin/python check

# --- 2. tctl from Teleport's own image (same Debian 12 glibc as the Python base) ----------------
FROM ${TELEPORT_IMAGE}:${TELEPORT_VERSION}@${TELEPORT_DIGEST} AS teleport

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
# No package installer at run time: the base's pip, setuptools and wheel go, and so do the
# wheels ensurepip and Debian keep to install pip again.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && bundled="$(python -c 'import ensurepip, os; print(os.path.dirname(ensurepip.__file__))')/_bundled" \
    && for dir in "$site" /usr/lib/python3/dist-packages; do \
         rm -rf "$dir"/pip "$dir"/pip-* "$dir"/setuptools "$dir"/setuptools-* "$dir"/wheel \
           "$dir"/wheel-* "$dir"/pkg_resources "$dir"/_distutils_hack "$dir"/distutils-precedence.pth; \
       done \
    && rm -rf /usr/local/bin/pip /usr/local/bin/pip3* /usr/bin/pip /usr/bin/pip3* \
       /usr/share/python-wheels "$bundled" \
    && if python -c 'import pip' 2>/dev/null; then echo "pip is still importable" >&2; exit 1; fi

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
