# syntax=docker/dockerfile:1
#
# wafproxy image: `docker build -t wafproxy .` then
#   docker run -p 8080:8080 -v $PWD/wafproxy.yaml:/etc/wafproxy/wafproxy.yaml:ro wafproxy
#
# Wheels for linux x86_64 / CPython 3.11 (checked with `pip download --only-binary=:all:`):
# aiohttp, uvloop, pyyaml, google-re2, hyperscan and maxminddb have manylinux wheels and
# prometheus-client is pure Python. libinjection-python (1.1.6) ships only an sdist with a C
# extension, so it is compiled in the build stage; the runtime stage carries no compiler.

FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/wafproxy/bin:$PATH
RUN python -m venv /opt/wafproxy
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir .

FROM python:3.11-slim
ENV PATH=/opt/wafproxy/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WAFPROXY_HEALTHCHECK_URL=http://127.0.0.1:9901/healthz
RUN groupadd --system --gid 10001 wafproxy \
    && useradd --system --uid 10001 --gid wafproxy --no-create-home \
       --shell /usr/sbin/nologin wafproxy
COPY --from=build /opt/wafproxy /opt/wafproxy
# A default config (upstream http://127.0.0.1:9000, the shipped web ACL); mount your own here.
COPY examples/wafproxy.yaml /etc/wafproxy/wafproxy.yaml
USER 10001:10001
EXPOSE 8080 9901
# slim has no curl; urlopen raises (exit 1) on a refused connection or a non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['WAFPROXY_HEALTHCHECK_URL'], timeout=4)"]
ENTRYPOINT ["wafproxy"]
CMD ["run", "-c", "/etc/wafproxy/wafproxy.yaml"]
