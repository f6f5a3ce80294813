#!/usr/bin/env python3
"""honey_duck's tasks: each one first makes `.venv` match `requirements.lock`, then runs.

    python3 tasks.py materialize [--group G] [--env NAME]   land every asset of the environment
    python3 tasks.py test [pytest args]                     run the whole test suite
    python3 tasks.py lint                                   ruff check and format check
    python3 tasks.py dev [--port N]                         start the Dagster UI (dg dev)
    python3 tasks.py services [--only postgres,s3]          start the dev servers on 127.0.0.1
    python3 tasks.py bench [--sinks monthly] [--rows 10M]   benchmark the sinks (see --help)
    python3 tasks.py docs [--check]                         write README's tables (--check: diff)
    python3 tasks.py lock                                   re-resolve both locks (needs uv)

Only Python (3.11, 3.12 or 3.13) and pip are needed; everything else installs from PyPI into
`.venv` (or the folder HONEY_DUCK_VENV names) from the one lock every version shares:
`requirements.lock`, the runtime dependencies with the `dev` and `bench` extras.
`requirements-runtime.lock` is the runtime set alone, at the same versions: what the Dockerfile
installs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("HONEY_DUCK_VENV") or ROOT / ".venv").resolve()
SUPPORTED = ((3, 11), (3, 12), (3, 13))
LOCK = ROOT / "requirements.lock"  # runtime + dev + bench: what .venv and the tests run on
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"  # runtime only, pinned as in LOCK: the image
EXTRAS = ("dev", "bench")
STAMP = VENV / ".honey_duck_lock"
BIN = VENV / "bin"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create `.venv` and install the locked dependencies, unless it already matches the lock."""
    if sys.version_info[:2] not in SUPPORTED:
        versions = ", ".join(f"{a}.{b}" for a, b in SUPPORTED)
        sys.exit(f"honey_duck needs Python {versions}; this is {sys.version.split()[0]}")
    python = BIN / "python"
    if not python.exists():
        print("creating .venv", flush=True)
        venv.create(VENV, with_pip=True)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("installing the locked packages into .venv (first run only)", flush=True)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar=off"]
    _install_with_progress([*pip, "-r", str(LOCK)])
    subprocess.run([*pip, "--quiet", "--no-deps", "-e", str(ROOT)], check=True)
    STAMP.write_text(_fingerprint())
    print(".venv is ready", flush=True)


def _install_with_progress(command: list[str]) -> None:
    """Run pip, printing a line every 20 packages fetched and one when it starts installing."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seen, output = 0, []
    for line in process.stdout:
        output.append(line)
        if line.startswith("Collecting "):
            seen += 1
            if seen % 20 == 0:
                print(f"  {seen} packages fetched", flush=True)
        elif line.startswith("Installing collected packages"):
            print(f"  installing {seen} packages (about a minute)", flush=True)
    if process.wait():
        sys.stdout.writelines(output[-40:])  # pip's own account of what failed
        raise subprocess.CalledProcessError(process.returncode, command)


def lock(args: list[str]) -> int:
    """Re-resolve LOCK from pyproject.toml, then RUNTIME_LOCK within LOCK's pins, and check both."""
    compile_ = ["uv", "pip", "compile", "pyproject.toml", "--universal", "--python-version", "3.11"]
    compile_ += ["--quiet", "--custom-compile-command", "python3 tasks.py lock"]
    extras = [arg for extra in EXTRAS for arg in ("--extra", extra)]
    code = run(*compile_, *extras, "-o", LOCK.name, *args)
    code = code or run(*compile_, "-c", LOCK.name, "-o", RUNTIME_LOCK.name, *args)
    code = code or check_wheels(LOCK, extras) or check_wheels(RUNTIME_LOCK, [])
    if not code:
        print(f"{LOCK.name} and {RUNTIME_LOCK.name} written")
    return code


def check_wheels(locked: Path, extras: list[str]) -> int:
    """Fail unless every package of `locked` has a binary wheel for each supported Python on
    x86_64 Linux, so no install needs a compiler (uv resolves against PyPI's metadata)."""
    for major, minor in SUPPORTED:
        code = run(
            "uv", "pip", "compile", "pyproject.toml", *extras, "-c", str(locked),
            "--python-version", f"{major}.{minor}", "--python-platform", "x86_64-manylinux_2_28",
            "--only-binary", ":all:", "--quiet", "-o", os.devnull,
        )  # fmt: skip
        if code:
            print(f"{locked.name} has no wheel for some package on Python {major}.{minor}")
            return code
    versions = ", ".join(f"{a}.{b}" for a, b in SUPPORTED)
    print(f"every package of {locked.name} has a wheel for {versions}")
    return 0


def dagster_home() -> Path:
    """`data/dagster_home`: the instance `materialize` records its runs in and the UI reads.

    Everything Dagster keeps (runs, events, schedules, logs, its `.nux` and `.logs_queue`)
    stays inside it, out of the repository's tree; its `dagster.yaml` only turns telemetry off.
    """
    home = ROOT / "data" / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    return home


def run(*command: str) -> int:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def hand_over(*command: str) -> int:
    """Replace this process with `command`, so signals (Ctrl-C, a CI timeout) reach it."""
    os.chdir(ROOT)
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    os.execv(command[0], command)
    return 1  # not reached


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    task, args = argv[0], argv[1:]
    if task == "lock":  # a maintainer's task: needs uv, which `pip install uv` provides
        return lock(args)
    ensure_venv()
    python = str(BIN / "python")
    if task == "materialize":
        return hand_over(python, "-m", "honey_duck.cli", "materialize", *args)
    if task == "test":
        return hand_over(python, "-m", "pytest", *args)
    if task == "lint":
        return run(python, "-m", "ruff", "check", ".") or run(
            python, "-m", "ruff", "format", "--check", "."
        )
    if task == "docs":
        return hand_over(python, "-m", "honey_duck_dev.docs", *args)
    if task == "bench":
        return hand_over(python, "-m", "honey_duck_dev.benchmarks", *args)
    if task == "services":
        return hand_over(python, "-m", "honey_duck_dev.services", "up", *args)
    if task == "dev":
        os.environ["DAGSTER_HOME"] = os.environ.get("DAGSTER_HOME") or str(dagster_home())
        os.environ["VIRTUAL_ENV"] = str(VENV)  # dg runs the code location in this environment
        return hand_over(str(BIN / "dg"), "dev", *args)
    print(f"unknown task {task!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
