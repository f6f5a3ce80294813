# The honey_duck code location as an image: the same locked dependencies as `.venv`, Dagster's
# production instance config, and the code. docker-compose.yml runs it three ways: the gRPC code
# server, the webserver and the daemon. Not built by any test (no container engine runs there).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/home \
    HONEY_DUCK_HOME=/opt/dagster/data

WORKDIR /opt/honey_duck
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.lock
COPY honey_duck ./honey_duck
COPY honey_duck_dev ./honey_duck_dev
COPY data/input ./data/input
RUN pip install --no-cache-dir --no-deps -e . \
    && mkdir -p "$DAGSTER_HOME" "$HONEY_DUCK_HOME"
COPY deploy/prod/dagster.yaml /opt/dagster/home/dagster.yaml
COPY deploy/compose/workspace.yaml /opt/dagster/workspace.yaml

EXPOSE 4000 3000
CMD ["dagster", "api", "grpc", "-m", "honey_duck.definitions", "-h", "0.0.0.0", "-p", "4000"]
