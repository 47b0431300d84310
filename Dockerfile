# The myositis-cds service image: python:3.11-slim, the package installed with
# pip, served by gunicorn on 8080 (its settings: service/gunicorn_app.py, the one
# place they live; the CMD goes through `myositis-cds serve`).
#
# Two targets. The default (last) one, `runtime`, carries only the runtime packages
# (service, mappings, cards): no sandbox FHIR server, no example patients.
# `sandbox` adds the sandbox package for docker-compose.yml's one-shot loader
# (`myositis-cds load`) and `fire`.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY mappings ./mappings
COPY cards ./cards
RUN useradd --system --uid 10001 --no-create-home cds \
    && mkdir -p /data \
    && chown cds /data

# Feedback, issued cards and the JWT replay store live in one SQLite file.
ENV MYOSITIS_CDS_DATABASE=/data/myositis-cds.sqlite3
VOLUME ["/data"]
EXPOSE 8080


FROM base AS sandbox
COPY sandbox ./sandbox
RUN pip install .
USER cds


FROM base AS runtime
RUN pip install .
USER cds

# python:3.11-slim has no curl: the readiness probe is a line of Python.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=3)"]

# Loopback unless told otherwise (MYOSITIS_CDS_BIND_HOST=0.0.0.0, as docker-compose.yml does for its
# nginx front): gunicorn is not made to face slow clients itself (deploy/nginx.conf).
ENV MYOSITIS_CDS_BIND_HOST=127.0.0.1
CMD ["myositis-cds", "serve", "--port", "8080", "--workers", "2"]
