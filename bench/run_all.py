"""Run every benchmark and write their figures as one Markdown table.

Run from the project root::

    .venv/bin/python -m bench.run_all --quick            # every benchmark, small sizes
    .venv/bin/python -m bench.run_all                    # the full sizes (an hour or more)
    .venv/bin/python -m bench.run_all --only latency large
    .venv/bin/python -m bench.run_all --only large --keep-others   # refresh some rows

Each benchmark module exposes ``run(quick: bool) -> list[Row]``. Their rows go to
``docs/includes/benchmarks-table.md`` (``--output``), which docs/benchmarks.md includes.
A benchmark that fails gives a row saying so, and the others still run; the exit status
is then 1. The modules run one after the other, never at once: each one starts its own
processes and would measure the others'.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.rows import Row, markdown_table, print_rows

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "includes" / "benchmarks-table.md"
#: The benchmarks, in the order they run (helpers such as big_batch, plain_celery and
#: plain_chord are not benchmarks: they serve these).
BENCHMARKS = ("latency", "throughput", "large", "scaling", "api", "console", "item_reads",
              "cursors", "retry", "rethrottle", "sse")


def run_one(name: str, quick: bool) -> tuple[list[Row], bool]:
    """The rows of one benchmark, or one row saying how it failed; and whether it ran."""
    started = time.monotonic()
    environ = dict(os.environ)  # some set BATCHQ_* for the runtimes they build in-process
    try:
        rows = importlib.import_module(f"bench.{name}").run(quick)
    except BaseException as exc:  # one broken benchmark must not lose the others' figures
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc()
        return [Row(name, "FAILED", f"{type(exc).__name__}: {str(exc)[:200]}", "", False)], False
    finally:
        os.environ.clear()
        os.environ.update(environ)
    print(f"{name}: {len(rows)} rows in {time.monotonic() - started:.0f} s", flush=True)
    return rows, True


def header(quick: bool, loads: tuple[str, str]) -> str:
    """What the table was measured on, above it (one line)."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "`--quick` sizes" if quick else "full sizes"
    return (f"Measured {when} by `python -m bench.run_all{' --quick' if quick else ''}` "
            f"({mode}) on {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"load average {loads[0]} at the start, {loads[1]} at the end")


def _existing(path: Path) -> tuple[list[Row], list[str]]:
    """The rows and the header notes of a table this script wrote before."""
    if not path.exists():
        return [], []
    rows, notes = [], []
    for line in path.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| benchmark |"):
            cells = [cell.strip().replace("\\|", "|")
                     for cell in line.strip("|").split(" | ")]
            if len(cells) == 5:
                verdict = {"OK": True, "MISSED": False}.get(cells[4])
                rows.append(Row(cells[0], cells[1], cells[2], cells[3], verdict))
        elif line.startswith("Measured "):
            notes.append(line)
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, minutes not hours")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="these benchmarks only")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--keep-others", action="store_true",
                        help="keep the rows of the benchmarks not run from --output, and its "
                             "header lines (with --only: refresh some rows)")
    args = parser.parse_args(argv)
    load_start = f"{os.getloadavg()[0]:.2f}"
    rows: list[Row] = []
    all_ran = True
    for name in args.only or BENCHMARKS:
        print(f"== {name}", flush=True)
        found, ran = run_one(name, args.quick)
        rows += found
        all_ran &= ran
    print_rows("Every benchmark", rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    loads = (load_start, f"{os.getloadavg()[0]:.2f}")
    names = set(args.only or BENCHMARKS)
    kept, notes = _existing(args.output) if args.keep_others else ([], [])
    rows = [row for row in kept if row.bench not in names] + rows
    order = {name: n for n, name in enumerate(BENCHMARKS)}
    rows.sort(key=lambda row: order.get(row.bench, len(order)))  # stable within a benchmark
    notes.append(header(args.quick, loads).strip() + f" ({', '.join(sorted(names))})")
    args.output.write_text("\n\n".join(notes) + "\n\n" + markdown_table(rows))
    print(f"wrote {args.output}")
    return 0 if all_ran else 1


if __name__ == "__main__":
    sys.exit(main())
