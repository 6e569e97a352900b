# The databus image: every `databus` command (worker, publish, simulate, topics, ...).
#   docker build -t databus .        docker run --rm databus catalog list
# Build stage: install the package with the RocksDB extra into a virtualenv, so the
# runtime stage gets the installed files without the source tree or pip's caches.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/databus
COPY pyproject.toml README.md /src/
COPY deploy/kafka/pom.xml /src/deploy/kafka/pom.xml
COPY src /src/src
RUN /opt/databus/bin/pip install "/src[rocksdb]"

FROM python:3.11-slim
ENV PATH=/opt/databus/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATABUS_STATE_DIR=/var/lib/databus \
    DATABUS_CACHE_DIR=/tmp/databus-cache
RUN groupadd --system --gid 10001 databus \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/databus --create-home \
       --shell /usr/sbin/nologin databus
COPY --from=build /opt/databus /opt/databus
USER 10001:10001
WORKDIR /var/lib/databus
# Worker tables (RocksDB) live under the state dir: mount a volume here.
VOLUME ["/var/lib/databus"]
# Faust's web server (/metrics) of `databus worker --web-port 6066`; publisher metrics.
EXPOSE 6066 9400
ENTRYPOINT ["databus"]
CMD ["--help"]
