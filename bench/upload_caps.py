"""What the byte caps of an upload cost: the NDJSON and CSV readers with and without them.

    .venv/bin/python -m bench.upload_caps                  # 500,000 items
    .venv/bin/python -m bench.upload_caps --items 100000

Each run reads one body through ``batchq.service.upload_formats`` and
``batchq.domain.items.ItemReader`` (as ``POST /batches`` does, without the
database): once with the default caps (``BATCHQ_MAX_LINE_KB`` 1024,
``BATCHQ_MAX_UPLOAD_MB`` 2048), once with caps so large they never apply. It
prints the best of ``--rounds`` (5) runs of each, taken in turns, and their
ratio. The caps are compared once per 64 KB read block and once per line, so
the ratio should be 1.00 within noise. It needs no service.
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import time
from collections.abc import Callable

from batchq.batch_types.builtin import echo
from batchq.batch_types.registry import declared_type
from batchq.domain.items import ItemReader
from batchq.service.upload_formats import Upload, UploadLimits, csv_items, ndjson_items

UNCAPPED = UploadLimits(line_bytes=sys.maxsize, total_bytes=sys.maxsize)


def bodies(items: int) -> dict[str, tuple[bytes, Callable[..., Upload]]]:
    ndjson = "".join(f'{{"key": "k{n}", "payload": {{"n": {n}, "name": "item {n}"}}}}\n'
                     for n in range(items))
    csv = "key,n,name\n" + "".join(f"k{n},{n},item {n}\n" for n in range(items))
    return {"ndjson": (ndjson.encode(), ndjson_items), "csv": (csv.encode(), csv_items)}


def read_once(data: bytes, reader: Callable[..., Upload], limits: UploadLimits) -> float:
    gc.disable()  # as creation does (batchq.service.creation._cyclic_gc_paused)
    try:
        started = time.perf_counter()
        item_reader = ItemReader("bench", declared_type(echo), sys.maxsize)
        for _chunk in item_reader.chunks(reader(io.BytesIO(data), limits)):
            pass
        return time.perf_counter() - started
    finally:
        gc.enable()


def best_of(data: bytes, reader: Callable[..., Upload], rounds: int) -> tuple[float, float]:
    """The best time with the default caps and without, taken in turns (so load hits both)."""
    capped, uncapped = float("inf"), float("inf")
    for _ in range(rounds):
        capped = min(capped, read_once(data, reader, UploadLimits()))
        uncapped = min(uncapped, read_once(data, reader, UNCAPPED))
    return capped, uncapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'format':>7} {'items':>9} {'MB':>6} {'capped s':>9} {'uncapped s':>11} {'ratio':>6}")
    for name, (data, reader) in bodies(args.items).items():
        capped, uncapped = best_of(data, reader, args.rounds)
        print(f"{name:>7} {args.items:>9,} {len(data) / 2**20:>6.1f} {capped:>9.3f} "
              f"{uncapped:>11.3f} {capped / uncapped:>6.2f}")


if __name__ == "__main__":
    main()
