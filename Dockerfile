# syntax=docker/dockerfile:1
# Liaison API image. Migrations run as their own step before a release:
#   docker run --rm -e LIAISON_DATABASE_URL=... -e LIAISON_SIGNING_KEY=... IMAGE liaison migrate
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/liaison
COPY constraints.txt pyproject.toml README.md ./
COPY app ./app
RUN /opt/liaison/bin/pip install -c constraints.txt .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/liaison/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LIAISON_ENVIRONMENT=production \
    LIAISON_LOG_FORMAT=json
RUN groupadd --system liaison && useradd --system --gid liaison --home-dir /srv/liaison liaison
WORKDIR /srv/liaison
COPY --from=build /opt/liaison /opt/liaison
COPY alembic.ini ./
COPY alembic ./alembic
USER liaison
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2)"]
CMD ["liaison", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
