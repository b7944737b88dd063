# The relay as a container: non-root, database on a volume, health-checked.
#   docker build -t relay .
#   docker run -e RELAY_INGEST_TOKEN=... -e RELAY_ADMIN_TOKEN=... \
#     -v relay-data:/data -v $PWD/relay.yaml:/etc/relay/relay.yaml -p 8787:8787 relay
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    RELAY_CONFIG=/etc/relay/relay.yaml

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin relay \
 && mkdir -p /data /etc/relay && chown relay:relay /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY relay ./relay
COPY receiver_kit ./receiver_kit
RUN pip install ".[postgres]" && rm -rf /src
COPY docker/relay.yaml /etc/relay/relay.yaml

WORKDIR /data
VOLUME ["/data"]
USER relay
EXPOSE 8787
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=2)"]
ENTRYPOINT ["relay"]
CMD ["run"]
