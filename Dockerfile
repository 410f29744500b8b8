# syntax=docker/dockerfile:1
# llmgw's image: `docker build -t llmgw .` then `docker run --env-file .env -p 8080:8080 llmgw`.
# The gateway binds 0.0.0.0 here, so it refuses to start without GATEWAY_API_KEYS: set it in .env.

# --- build: install the package and its dependencies into a virtual environment -------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/llmgw
WORKDIR /build
# Only what the package needs: never the whole context, which may hold .env or a metrics.db.
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/llmgw/bin/pip install --no-compile . \
    && /opt/llmgw/bin/python -m compileall -q /opt/llmgw/lib

# --- runtime: the virtual environment on a clean base, run by an unprivileged user -----------------
FROM python:3.11-slim
ENV PATH=/opt/llmgw/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    METRICS_DB_PATH=/data/metrics.db \
    STATE_DB_PATH=/data/state.db
RUN groupadd --system --gid 10001 llmgw \
    && useradd --system --uid 10001 --gid llmgw --home-dir /data --shell /usr/sbin/nologin llmgw \
    && mkdir /data \
    && chown llmgw:llmgw /data
COPY --from=build /opt/llmgw /opt/llmgw
# Numeric, so orchestrators can verify runAsNonRoot without resolving the name.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# Python, not curl: the slim base has no curl and the image needs no extra package. The proxy
# handler is emptied so an HTTP_PROXY given to the container cannot capture the probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/health' % os.environ.get('PORT', '8080'), timeout=4)"]
CMD ["llmgw"]
