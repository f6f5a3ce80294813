"""Run the `dev` servers until interrupted: `python -m honey_duck_dev.services up --help`."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from honey_duck.environments import ENV_VAR
from honey_duck_dev.services.lifecycle import HOST, ServiceError, raise_interrupt
from honey_duck_dev.services.registry import SERVICES, service


def _parse_only(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown service(s) {', '.join(unknown) or '(none)'}; known: {', '.join(SERVICES)}"
        )
    return names


def up(
    names: Sequence[str],
    data_dir: Path | None = None,
    any_port: bool = False,
    out: IO[str] = sys.stdout,
) -> None:
    """Start the services on their `dev` ports, print their variables, run until interrupted."""
    signal.signal(signal.SIGTERM, raise_interrupt)
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {ENV_VAR: "dev"}
        for name in names:
            cls = service(name)
            server = stack.enter_context(
                cls.start(
                    port=None if any_port else cls.dev_port,
                    data_dir=data_dir / name if data_dir else None,
                )
            )
            stack.callback(print, f"{name}: stopping pid {server.pid}", file=sys.stderr)
            print(
                f"{name}: pid {server.pid} on {HOST}:{server.port}, data in {server.root}",
                file=sys.stderr,
                flush=True,
            )
            env.update(server.env())
            server.prepare_for_dev()
        print(_exports(env), file=out, flush=True)
        print("# running until Ctrl-C or SIGTERM", file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                signal.pause()
        # a second Ctrl-C while the servers stop must not leave one of them running
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def _exports(env: Mapping[str, str]) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())


def main(argv: Sequence[str] | None = None) -> int:
    """The `up` command; 1 if a server failed to start, 130 if interrupted while starting."""
    parser = argparse.ArgumentParser(
        prog="python -m honey_duck_dev.services",
        description="Start the servers the sinks need on 127.0.0.1, for HONEY_DUCK_ENV=dev.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start the servers for HONEY_DUCK_ENV=dev")
    start.add_argument(
        "--only",
        type=_parse_only,
        default=list(SERVICES),
        help=f"comma-separated services (default: all of {','.join(SERVICES)})",
    )
    start.add_argument(
        "--data-dir", type=Path, help="keep the servers' data here (default: a temporary dir)"
    )
    start.add_argument(
        "--any-port", action="store_true", help="free ports instead of the dev defaults"
    )
    args = parser.parse_args(argv)
    try:
        up(args.only, data_dir=args.data_dir, any_port=args.any_port)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a signal while a server was still starting
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
