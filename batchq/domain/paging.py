"""How a batch's items divide into pages: pure arithmetic over per-stage item counts.

Items are numbered ``pos = 0..n-1`` within their stage, so a page is a contiguous
range of one stage and no item has to be read to create pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

StageSizes = Sequence[Sequence[int]]  # [[stage, item count], ...] in stage order


@dataclass(frozen=True)
class PageSpec:
    """One execution job: items ``first_pos .. first_pos + item_count - 1`` of ``stage``."""

    page_no: int
    stage: int
    first_pos: int
    item_count: int


def count_pages(stage_sizes: StageSizes, page_size: int) -> int:
    """The number of pages (``totalJobs``): a page never spans two stages."""
    return sum(-(-count // page_size) for _stage, count in stage_sizes)


def page_specs(stage_sizes: StageSizes, page_size: int, start: int, limit: int) -> list[PageSpec]:
    """Pages ``start .. start + limit - 1`` (fewer at the end of the batch)."""
    specs: list[PageSpec] = []
    first_page_of_stage = 0
    for stage, count in stage_sizes:
        pages_in_stage = -(-count // page_size)
        end_of_stage = first_page_of_stage + pages_in_stage
        page_no = max(start, first_page_of_stage)
        while page_no < end_of_stage and len(specs) < limit:
            first_pos = (page_no - first_page_of_stage) * page_size
            size = min(page_size, count - first_pos)
            specs.append(PageSpec(page_no, stage, first_pos, size))
            page_no += 1
        first_page_of_stage = end_of_stage
        if len(specs) >= limit:
            break
    return specs


def chunk_page_specs(first_page_no: int, first_pos: int, count: int,
                     page_size: int) -> list[PageSpec]:
    """Pages of ``count`` items appended at ``first_pos`` of stage 0 (a source's chunk).

    A source batch grows chunk by chunk, so its pages are cut per chunk: a page
    never spans two chunks, and only a chunk's last page may be short.
    """
    return [PageSpec(first_page_no + n, 0, first_pos + start, min(page_size, count - start))
            for n, start in enumerate(range(0, count, page_size))]


def stage_of_page(stage_sizes: StageSizes, page_size: int, page_no: int) -> int | None:
    """The stage page ``page_no`` belongs to; None past the last page."""
    specs = page_specs(stage_sizes, page_size, page_no, 1)
    return specs[0].stage if specs else None
