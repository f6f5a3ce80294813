"""A file-sink writer in its own process, for tests that kill writers or run several at once.

    python -m honey_duck_tests.targets.files.writer BASE FORMAT --rows N [--months 4] [--label L]
        [--repeat K] [--die-after-publishes P] [--s3 ENDPOINT,KEY,SECRET]
        [--source PARQUET [--collect]] [--peak] [--reconcile]

`--die-after-publishes` sends this process SIGKILL right after its P-th file is published,
which is what a crash between two renames of a range write looks like. `--source` writes the
rows of a Parquet file, scanned lazily (or collected first, with `--collect`), and `--peak`
prints how far this process's resident memory rose above where it stood before the rows were
read (KiB, sampled every 5 ms), which start-up's own high-water mark cannot hide. With
`--reconcile`, `--peak` measures instead the reconciliation of the written file with `--source`
(both read back and compared, as the asset check does), after the write.
"""

import argparse
import os
import resource
import signal
import sys
import threading

import dagster as dg
import polars as pl

from honey_duck.connections import S3Config
from honey_duck.seam.reconcile import compare
from honey_duck.targets.files import FileIOManager
from honey_duck.targets.files import store as filestore
from honey_duck_tests.contract.runs import MONTHLY, error_of, run


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
    parser.add_argument("--source", default="")
    parser.add_argument("--collect", action="store_true")
    parser.add_argument("--peak", action="store_true")
    parser.add_argument("--raw", action="store_true", help="polars' own sink, no IO manager")
    parser.add_argument("--reconcile", action="store_true", help="measure the check, not the write")
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
    sampler = RssSampler() if args.peak and not args.reconcile else None
    data = frame(args.rows, args.label, max(args.months, 1))
    if args.source:
        data = pl.scan_parquet(args.source)
        if args.collect and not args.reconcile:
            data = data.collect().lazy()
    if args.raw:  # the floor: the same rows through polars' own streaming sink of the format
        os.makedirs(args.base, exist_ok=True)
        sink = {"csv": data.sink_csv, "json": data.sink_ndjson, "parquet": data.sink_parquet}
        sink[args.format](os.path.join(args.base, f"raw.{args.format}"))
        args.repeat = 0
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
    if args.reconcile:
        # anonymous memory only: polars maps the files it reads, and their mapped pages (the
        # page cache, given back under pressure) would count as resident
        sampler = RssSampler(anonymous=True) if args.peak else None
        readback = io.readback()
        key = dg.AssetKey(["t", "table"])
        landed = readback.read(key, {}, None)
        if args.collect:  # the comparison's yardstick: the read-back rows held whole
            landed = pl.LazyFrame(landed.collect())
        result = compare("t", data, landed, readback.landing)
        if not result.passed:
            print(result.description(), file=sys.stderr)
            return 1
    if sampler is not None:
        print(sampler.stop())
    return 0


class RssSampler:
    """Samples this process's resident memory in a thread; `stop()` gives the rise in KiB."""

    def __init__(self, anonymous: bool = False) -> None:
        self._read = _anon_kib if anonymous else _rss_kib
        self.start = self.peak = self._read()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self._read())

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return max(self.peak, self._read()) - self.start


def _anon_kib() -> int:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("RssAnon:"))
    return int(line.split()[1])


def _rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() // 1024


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
