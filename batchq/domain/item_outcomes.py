"""What became of each item, as pure rules over a batch's counters and its done pages.

An item is *processed* once its page is done, *failed* when it has an error,
*succeeded* when processed and not failed, *unprocessed* otherwise (pages are
created lazily, so an item may have no page yet). The done pages of a batch
form *segments*: maximal runs ``[start, end)`` of positions of one stage whose
pages are all done.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

DEFAULT_TOP_MESSAGES = 10
MAX_TOP_MESSAGES = 100
#: How many keys an error summary shows per message.
SAMPLE_KEYS = 3


class ItemStatus(StrEnum):
    """An item's outcome, as ``GET /batches/{id}/items?status=`` filters it."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNPROCESSED = "unprocessed"


@dataclass(frozen=True)
class Segment:
    """Positions ``start .. end - 1`` of ``stage``; ``end`` None means "to the stage's end"."""

    stage: int
    start: int
    end: int | None


def count_items(batch: Mapping[str, Any], status: ItemStatus | None) -> int:
    """How many items of ``batch`` have ``status`` (None: all), from its counters."""
    total, processed, failed = (int(batch["total_items"]), int(batch["processed_items"]),
                                int(batch["failed_items"]))
    return {None: total, ItemStatus.FAILED: failed, ItemStatus.SUCCEEDED: processed - failed,
            ItemStatus.UNPROCESSED: total - processed}[status]


def open_segments(stage_sizes: Sequence[Sequence[int]], done: Sequence[Segment]) -> list[Segment]:
    """The complement of ``done`` in each stage: the unprocessed positions.

    The last run of each stage is left open-ended, so items appended to a
    stage after the batch row was read still count as unprocessed.
    """
    by_stage: dict[int, list[Segment]] = {}
    for segment in done:
        by_stage.setdefault(segment.stage, []).append(segment)
    holes: list[Segment] = []
    for stage, count in stage_sizes:
        position = 0
        for segment in by_stage.get(stage, []):
            if segment.start > position:
                holes.append(Segment(stage, position, segment.start))
            position = max(position, segment.end or position)
        if position < count:
            holes.append(Segment(stage, position, None))
    return holes


class SegmentLookup:
    """Is (stage, pos) inside one of the done segments? A binary search per stage."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self._by_stage: dict[int, tuple[list[int], list[Segment]]] = {}
        for segment in segments:
            starts, runs = self._by_stage.setdefault(segment.stage, ([], []))
            starts.append(segment.start)
            runs.append(segment)

    def covers(self, stage: int, pos: int) -> bool:
        starts, runs = self._by_stage.get(stage, ([], []))
        index = bisect.bisect_right(starts, pos) - 1
        if index < 0:
            return False
        end = runs[index].end
        return end is None or pos < end
