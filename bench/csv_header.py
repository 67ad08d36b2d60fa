"""How long the CSV reader takes for a wide header: the check of its column names.

    .venv/bin/python -m bench.csv_header                       # 10k, 20k, 40k columns
    .venv/bin/python -m bench.csv_header --columns 40000

Each run reads a body of one header row and one data row through
``batchq.service.upload_formats.csv_items``, as ``POST /batches`` with
``Content-Type: text/csv`` does, and prints the best of three times. It needs no
service. One row with a repeated column name is timed too: the refusal must be
as cheap as the acceptance.
"""

from __future__ import annotations

import argparse
import io
import time

from batchq.errors import InvalidBatch
from batchq.service.upload_formats import csv_items


def body(columns: int, repeat_last: bool = False) -> bytes:
    names = [f"c{n}" for n in range(columns)]
    if repeat_last:
        names[-1] = names[0]
    return (",".join(names) + "\n" + ",".join("x" * columns) + "\n").encode()


def seconds_to_read(data: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        try:
            for _item in csv_items(io.BytesIO(data)):
                pass
        except InvalidBatch:
            pass
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", type=int, nargs="*", default=[10_000, 20_000, 40_000])
    args = parser.parse_args()
    print(f"{'columns':>8} {'body KB':>8} {'accepted s':>11} {'refused s':>10}")
    for columns in args.columns:
        data = body(columns)
        print(f"{columns:>8} {len(data) // 1024:>8} {seconds_to_read(data):>11.3f} "
              f"{seconds_to_read(body(columns, repeat_last=True)):>10.3f}")


if __name__ == "__main__":
    main()
