"""A file-sink writer in its own process, for tests that kill writers or run several at once.

    python -m honey_duck_tests.io.writer BASE FORMAT --rows N [--months 4] [--label L]
        [--repeat K] [--die-after-publishes P] [--s3 ENDPOINT,KEY,SECRET]

`--die-after-publishes` sends this process SIGKILL right after its P-th file is published,
which is what a crash between two renames of a range write looks like.
"""

import argparse
import os
import signal
import sys

import dagster as dg
import polars as pl

from honey_duck.io import filestore
from honey_duck.io.connections import S3Config
from honey_duck.io.files import FileIOManager
from honey_duck_tests.io.runs import error_of, run

MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-05-01")


def frame(rows: int, label: str, months: int) -> pl.LazyFrame:
    """`rows` rows spread over the first `months` months of 2024, each tagged `label`."""
    return (
        pl.LazyFrame({"id": pl.int_range(rows, eager=True)})
        .with_columns(
            d=pl.date(2024, 1 + pl.col("id") % months, 1 + pl.col("id") % 28),
            v=pl.lit(label) + pl.col("id").cast(pl.String),
        )
        .select("id", "d", "v")
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("format")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--months", type=int, default=0, help="0: unpartitioned")
    parser.add_argument("--label", default="w")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--die-after-publishes", type=int, default=0)
    parser.add_argument("--s3", default="")
    args = parser.parse_args(argv)

    if args.die_after_publishes:
        publish, count = filestore.Store.publish, [0]

        def publish_then_die(self: filestore.Store, staged: str, final) -> filestore.Identity:
            published = publish(self, staged, final)
            count[0] += 1
            if count[0] == args.die_after_publishes:
                os.kill(os.getpid(), signal.SIGKILL)
            return published

        filestore.Store.publish = publish_then_die  # type: ignore[method-assign]

    s3 = None
    if args.s3:
        endpoint, key, secret = args.s3.split(",")
        s3 = S3Config(endpoint_url=endpoint, access_key_id=key, secret_access_key=secret)
    io = FileIOManager(format=args.format, base_path=args.base, s3=s3)
    data = frame(args.rows, args.label, max(args.months, 1))
    for _ in range(args.repeat):
        if args.months:
            tags = {
                "dagster/asset_partition_range_start": "2024-01-01",
                "dagster/asset_partition_range_end": f"2024-{args.months:02d}-01",
            }
            result = run(
                io, lambda: data, metadata={"partition_expr": "d"}, partitions_def=MONTHLY,
                tags=tags,
            )  # fmt: skip
        else:
            result = run(io, lambda: data)
        if not result.success:
            print(error_of(result), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
