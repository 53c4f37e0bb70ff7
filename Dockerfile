# One image for every artdag service: `docker run IMAGE planner` starts `python -m services.planner`;
# `docker run IMAGE migrate` brings the database schema up to date. See deploy/docker/entrypoint.sh.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtualenv in /opt/artdag ---------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/artdag
# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when they change,
# not on every source edit. The OTLP exporter is included so traces can go to Tempo/Alloy.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(deps))" > /tmp/requirements.txt \
 && /opt/artdag/bin/pip install -r /tmp/requirements.txt "opentelemetry-exporter-otlp-proto-http>=1.28"
# Then the source, installed without touching the dependencies again.
COPY README.md ./
COPY libs ./libs
COPY services ./services
RUN /opt/artdag/bin/pip install --no-deps . \
 && /opt/artdag/bin/python -c "import services.gateway.app, artdag_common.runtime"

# -- runtime: the virtualenv, the entry point, a user without privileges ------------
FROM ${PYTHON_IMAGE} AS runtime
# A fixed high uid/gid: Kubernetes' runAsNonRoot check needs a numeric user, and it matches the chart.
RUN groupadd --system --gid 10001 artdag \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin artdag \
 && mkdir -p /data \
 && chown 10001:10001 /data
COPY --from=build /opt/artdag /opt/artdag
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/artdag-entrypoint
# The root filesystem may be read-only: everything artdag writes goes under ARTDAG_HOME (a volume).
ENV PATH=/opt/artdag/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ARTDAG_HOME=/data \
    ARTDAG_HOST=0.0.0.0 \
    ARTDAG_PROBE_HOST=0.0.0.0 \
    ARTDAG_LOG_FORMAT=json
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8100 9464
ENTRYPOINT ["/usr/local/bin/artdag-entrypoint"]
CMD ["gateway"]
