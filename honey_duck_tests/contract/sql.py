"""The probe of the SQL family (PostgreSQL, its DuckDB stand-in, Redshift on PostgreSQL):
tables in a fresh schema per test, read back with the target's own DB-API client."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from honey_duck_tests.contract.probe import Probe, frame_of


def quoted(*names: str) -> str:
    return ".".join('"' + n.replace('"', '""') + '"' for n in names)


class SqlProbe(Probe):
    """`query(sql)` runs one statement with the native client and returns its rows;
    `select(sql)` the same for reads (PostgreSQL reads in binary: its text form of a real
    keeps only 7 digits, not the stored value)."""

    decimal_words = "(12,2) in the target"

    def __init__(
        self,
        word: str,
        title: str,
        manager: Callable[..., Any],
        query: Callable[[str], list[tuple]],
        schema: str,
        select: Callable[[str], list[tuple]] | None = None,
    ) -> None:
        self.word, self.title, self.schema = word, title, schema
        self._manager, self.query, self.select = manager, query, select or query

    def manager(self, **config: Any) -> Any:
        return self._manager(**config)

    def location(self, table: str) -> dict[str, Any]:
        return (
            {"schema": self.schema, "table": table} if table != "table" else {"schema": self.schema}
        )

    def table(self, table: str = "table") -> str:
        return quoted(self.schema, table)

    def table_name(self, table: str) -> str:
        return f"{self.schema}.{table}"

    def native(self, table: str, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        return self.read(self.table(table), schema)

    def read(self, where: str, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        names = ", ".join(quoted(c) for c in schema)
        found = self.select(f"SELECT {names} FROM {where}")
        return frame_of({c: [r[i] for r in found] for i, c in enumerate(schema)}, schema)

    def exists(self, table: str) -> bool:
        return bool(
            self.query(
                "SELECT 1 FROM information_schema.tables"
                f" WHERE table_schema = '{self.schema}' AND table_name = '{table}'"
            )
        )

    def update(self, table: str, id: int, column: str, value: Any) -> None:
        self.query(f"UPDATE {self.table(table)} SET {quoted(column)} = {value!r} WHERE id = {id}")

    def delete(self, table: str, id: int) -> None:
        self.query(f"DELETE FROM {self.table(table)} WHERE id = {id}")

    def leftovers(self) -> list[str]:
        found = self.query(
            "SELECT table_name FROM information_schema.tables"
            f" WHERE table_schema = '{self.schema}' AND table_name LIKE '\\_hd\\_%' ESCAPE '\\'"
        )
        return [r[0] for r in found]

    def odd_location(self) -> dict[str, Any]:
        return {"schema": f'{self.schema} "Odd" Schema', "table": 'Sales "Q1" Table'}

    def read_odd(self, meta: Mapping[str, Any], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
        return self.read(quoted(meta["schema"], meta["table"]), schema)
