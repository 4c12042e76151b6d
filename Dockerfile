# syntax=docker/dockerfile:1
# Liaison API image. The migrations are inside the installed package (app/migrations), so
# they run from any directory, as their own step before a release:
#   docker run --rm -e LIAISON_DATABASE_URL=... -e LIAISON_SIGNING_KEY=... IMAGE liaison migrate
# Without LIAISON_DATABASE_URL the image keeps a SQLite database in /var/lib/liaison, a
# volume its user owns (a trial; PostgreSQL for real use). Behind a reverse proxy, set
# LIAISON_FORWARDED_ALLOW_IPS to the proxy's address so that client addresses are believed.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/liaison
COPY constraints.txt pyproject.toml README.md ./
COPY app ./app
COPY alembic ./alembic
RUN /opt/liaison/bin/pip install -c constraints.txt .

FROM python:3.11-slim-bookworm
ENV PATH=/opt/liaison/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LIAISON_ENVIRONMENT=production \
    LIAISON_LOG_FORMAT=json \
    LIAISON_DATABASE_URL=sqlite+aiosqlite:////var/lib/liaison/liaison.db \
    LIAISON_DOCUMENT_DIR=/var/lib/liaison/documents \
    LIAISON_FORWARDED_ALLOW_IPS=127.0.0.1,::1
# Letters are laid out as PDF by WeasyPrint, which needs pango and fonts from Debian.
RUN apt-get update \
    && apt-get install --yes --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system liaison \
    && useradd --system --gid liaison --home-dir /var/lib/liaison --no-create-home \
        --shell /usr/sbin/nologin liaison \
    && install --directory --owner=liaison --group=liaison --mode=0750 /var/lib/liaison
COPY --from=build /opt/liaison /opt/liaison
WORKDIR /var/lib/liaison
USER liaison
VOLUME ["/var/lib/liaison"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2)"]
# One worker per core the container may use, each pool sized to fit max_connections.
CMD ["liaison", "serve", "--host", "0.0.0.0", "--port", "8000"]
