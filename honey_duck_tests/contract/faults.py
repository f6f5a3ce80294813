"""Faults every server sink survives: a writer killed mid-load leaves the old data, an
unreachable server is a clear error without the password, a server restart is waited for."""

from __future__ import annotations

import threading
import time

import polars as pl

from honey_duck_tests.contract.probe import Probe, rows, seen_reader
from honey_duck_tests.contract.runs import error_of, run

OLD = pl.DataFrame({"id": [1, 2, 3], "v": ["a", "b", "c"]})


class FaultsContract:
    """Subclasses give `probe` (a fixture) with `unreachable`, `private_server` and
    `killed_write`."""

    def test_a_writer_killed_mid_load_leaves_the_previous_data_whole(self, probe: Probe) -> None:
        io = probe.manager()
        assert run(io, lambda: OLD, metadata=probe.meta()).success
        probe.killed_write("table")
        assert rows(probe.native("table", OLD.schema), "id", "v") == rows(OLD, "id", "v")
        seen, consume = seen_reader()
        again = run(io, lambda: OLD.head(2), metadata=probe.meta(), consume=consume)
        assert again.success, error_of(again)
        assert seen["t"].sort("id").equals(OLD.head(2))
        native = probe.native("table", OLD.schema)
        assert rows(native, "id", "v") == rows(OLD.head(2), "id", "v")  # the zombie fenced
        assert probe.leftovers() == []  # what the killed writer left is reclaimed

    def test_an_unreachable_server_is_a_clear_error_without_the_password(
        self, probe: Probe
    ) -> None:
        io, where, password = probe.unreachable()
        result = run(io, lambda: pl.DataFrame({"id": [1]}), metadata=probe.meta())
        message = error_of(result)
        assert f"cannot connect to {probe.title} at {where}" in message, message
        assert password not in message
        assert password not in str([(e.message, e.event_specific_data) for e in result.all_events])

    def test_a_server_restart_is_waited_for_and_the_write_lands(self, probe: Probe) -> None:
        """Down when a write starts and back 3 s later: the default retries wait for it."""
        with probe.private_server() as server:
            io = server.manager()
            assert io.retries == 6  # type: ignore[attr-defined]  # the defaults, not ours
            assert run(io, lambda: pl.DataFrame({"id": [1]}), metadata=probe.meta()).success
            server.stop()

            def restart() -> None:
                time.sleep(3.0)
                server.start()

            restarter = threading.Thread(target=restart)
            restarter.start()
            began = time.monotonic()
            try:
                result = run(io, lambda: pl.DataFrame({"id": [1, 2]}), metadata=probe.meta())
            finally:
                restarter.join()
            assert result.success, error_of(result)
            assert time.monotonic() - began > 3.0, "the write never had to wait for the server"
            assert server.count("table") == 2
