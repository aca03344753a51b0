# The image every service of docker-compose.yml runs (the worker, Beat, Flower, the API, the
# sandbox and the emulators); built by `docker compose build`.
#
# - Python packages come from requirements.lock only, each at its pinned version and checked
#   against its hashes, pip itself included (as `make install` does); the project goes on top,
#   not editable and resolving nothing. Every locked package has a wheel for CPython 3.11 on
#   linux x86_64 and aarch64: no compiler is needed.
# - The npm trees (the Firestore emulator, the Firebase Auth emulator, the dashboard's browser
#   SDK) are installed from their lock files at build time, beside the installed package, and
#   owned by root: the services only read them.
# - The services run as `loyalty`, a system user whose home is the only place they write
#   (Beat's schedule goes to /tmp).
#
# Base images go by exact version tags: Python as this project's lock and tests run it
# (3.11.7), Node as its emulators are tested with (20.20.2; Debian's bookworm has only 18,
# below firebase-tools' 20), both on Debian bookworm. Their digests could not be looked up
# where this file was written (no registry reachable), so none is written here and none was
# verified: pin each by its digest, as printed by
#   docker buildx imagetools inspect python:3.11.7-slim-bookworm --format '{{json .Manifest.Digest}}'
#   docker buildx imagetools inspect node:20.20.2-bookworm-slim --format '{{json .Manifest.Digest}}'
# into `FROM python:3.11.7-slim-bookworm@sha256:...` (and likewise node).
FROM node:20.20.2-bookworm-slim AS node

FROM python:3.11.7-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
# Node and npm from the Node image (the same Debian, the same glibc). The base image's own pip,
# setuptools and wheel go: the only pip left is the locked one, in the venv.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
    && node --version && npm --version \
    && python -m pip uninstall --yes --quiet pip setuptools wheel

FROM base AS build
WORKDIR /src
# The venv's own pip is replaced by the locked one first, so the rest of the lock is installed
# by the pip it pins; then the whole lock, hashes required; then the project.
COPY requirements.lock ./
RUN python -m venv /opt/venv \
    && sed -n '/^pip==/,/# via/p' requirements.lock > /tmp/pip.lock \
    && pip install --require-hashes --no-deps -r /tmp/pip.lock \
    && pip install --require-hashes --no-deps -r requirements.lock \
    && rm /tmp/pip.lock
COPY . .
RUN pip install --no-deps --no-build-isolation . \
    && pip check
# Each npm tree goes where the installed package looks for it (`python -I`: the installed
# package, not the source tree in the working directory); its package.json and lock file are
# copied from the source first, whether or not they are package data. As `make install` does,
# the Auth emulator and the browser SDK run no install script and get nothing optional
# (firebase-tools' optional re2 would download a binary).
RUN set -e; \
    package="$(python -I -c 'import loyalty_worker, os; print(os.path.dirname(loyalty_worker.__file__))')"; \
    for tree in firestore_emulator auth_emulator api/browser; do \
        mkdir -p "$package/$tree"; \
        cp "loyalty_worker/$tree/package.json" "loyalty_worker/$tree/package-lock.json" "$package/$tree/"; \
        case "$tree" in firestore_emulator) quiet="" ;; *) quiet="--omit=optional --ignore-scripts" ;; esac; \
        (cd "$package/$tree" && npm ci --omit=dev $quiet --no-audit --no-fund --loglevel=error); \
    done

FROM base
RUN groupadd --system loyalty \
    && useradd --system --gid loyalty --create-home --home-dir /home/loyalty \
        --shell /usr/sbin/nologin loyalty
COPY --from=build /opt/venv /opt/venv
USER loyalty
WORKDIR /home/loyalty
