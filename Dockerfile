# Switchboard call service (and builder) image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SWITCHBOARD_HOST=0.0.0.0 \
    SWITCHBOARD_PORT=8000 \
    SWITCHBOARD_GRAPHS_DIR=/app/graphs

RUN apt-get update \
    && apt-get install -y --no-install-recommends git curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY nodes ./nodes
COPY runtime ./runtime
COPY tools ./tools
COPY graphs ./graphs
COPY builder ./builder
RUN pip install . && useradd --create-home --uid 10001 switchboard \
    && mkdir -p /data && chown switchboard /data
USER switchboard
ENV XDG_DATA_HOME=/data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["switchboard", "serve"]
