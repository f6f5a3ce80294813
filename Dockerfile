# The honey_duck code location as an image: the runtime dependencies alone, from
# requirements-runtime.lock (the versions of requirements.lock without the test servers, pytest,
# ruff or the benchmarks' baselines), Dagster's production instance config, and the code.
# docker-compose.yml runs it three ways: the gRPC code server, the webserver and the daemon. No
# test builds it (no container engine runs there); honey_duck_tests/dev/test_compose.py checks
# what it installs and copies.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/home \
    HONEY_DUCK_HOME=/opt/dagster/data

WORKDIR /opt/honey_duck
COPY requirements-runtime.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements-runtime.lock
COPY honey_duck ./honey_duck
COPY data/input ./data/input
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps -e . \
    && mkdir -p "$DAGSTER_HOME" "$HONEY_DUCK_HOME"
COPY deploy/prod/dagster.yaml /opt/dagster/home/dagster.yaml
COPY deploy/compose/workspace.yaml /opt/dagster/workspace.yaml

EXPOSE 4000 3000
CMD ["dagster", "api", "grpc", "-m", "honey_duck.definitions", "-h", "0.0.0.0", "-p", "4000"]
