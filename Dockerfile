# The myositis-cds service image: python:3.11-slim, the package installed with
# pip, served by gunicorn on 8080. Also used by docker-compose.yml's one-shot
# loader (`myositis-cds load`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY mappings ./mappings
COPY cards ./cards
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home cds \
    && mkdir -p /data \
    && chown cds /data

# Feedback, issued cards and the JWT replay store live in one SQLite file.
ENV MYOSITIS_CDS_DATABASE=/data/myositis-cds.sqlite3
VOLUME ["/data"]
USER cds
EXPOSE 8080

# python:3.11-slim has no curl: the readiness probe is a line of Python.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=3)"]

# gthread: hook calls wait on the EHR's FHIR server, threads keep a worker useful meanwhile.
CMD ["gunicorn", "--bind", "0.0.0.0:8080", "--workers", "2", "--worker-class", "gthread", "--threads", "4", \
     "--timeout", "30", "--graceful-timeout", "10", "service.wsgi:app"]
