"""Paging: how a batch's items divide into pages, as pure arithmetic."""

from __future__ import annotations

import itertools

from batchq.domain.paging import PageSpec, count_pages, page_specs, stage_of_page

ALL = 10**9  # a limit no test batch reaches


def test_ten_items_in_pages_of_four_make_three_pages_the_last_one_short() -> None:
    assert count_pages([[0, 10]], 4) == 3
    assert page_specs([[0, 10]], 4, 0, ALL) == [
        PageSpec(0, 0, 0, 4), PageSpec(1, 0, 4, 4), PageSpec(2, 0, 8, 2),
    ]


def test_pages_never_span_two_stages() -> None:
    # 5 + 5 items would fit three pages of four, but each stage starts a page of its own.
    assert count_pages([[0, 5], [1, 5]], 4) == 4
    assert page_specs([[0, 5], [1, 5]], 4, 0, ALL) == [
        PageSpec(0, 0, 0, 4), PageSpec(1, 0, 4, 1), PageSpec(2, 1, 0, 4), PageSpec(3, 1, 4, 1),
    ]


def test_a_page_size_larger_than_the_batch_gives_one_page_per_stage() -> None:
    sizes = [[0, 3], [2, 1], [7, 2]]
    assert count_pages(sizes, 1000) == 3
    assert page_specs(sizes, 1000, 0, ALL) == [
        PageSpec(0, 0, 0, 3), PageSpec(1, 2, 0, 1), PageSpec(2, 7, 0, 2),
    ]


def test_an_exact_multiple_of_the_page_size_leaves_no_empty_page() -> None:
    assert count_pages([[0, 8]], 4) == 2
    assert [spec.item_count for spec in page_specs([[0, 8]], 4, 0, ALL)] == [4, 4]


def test_a_stage_without_items_gets_no_page() -> None:
    assert count_pages([[0, 0], [1, 2]], 5) == 1
    assert page_specs([[0, 0], [1, 2]], 5, 0, ALL) == [PageSpec(0, 1, 0, 2)]


def test_a_window_returns_the_pages_from_start_up_to_limit() -> None:
    sizes = [[0, 5], [1, 5]]
    assert page_specs(sizes, 2, 2, 3) == [
        PageSpec(2, 0, 4, 1), PageSpec(3, 1, 0, 2), PageSpec(4, 1, 2, 2),
    ]


def test_a_window_at_the_end_returns_only_the_pages_that_are_left() -> None:
    assert page_specs([[0, 10]], 4, 2, 100) == [PageSpec(2, 0, 8, 2)]


def test_a_window_past_the_last_page_is_empty() -> None:
    assert page_specs([[0, 10]], 4, 3, 100) == []
    assert page_specs([[0, 10]], 4, 0, 0) == []


def _small_batches() -> list[list[list[int]]]:
    """Every batch of one to three stages (numbered sparsely) of 0 to 5 items each."""
    batches = []
    for stage_count in (1, 2, 3):
        for counts in itertools.product(range(6), repeat=stage_count):
            batches.append([[stage * 3 - 1, count] for stage, count in enumerate(counts)])
    return batches


def test_every_window_of_every_small_batch_tiles_each_item_exactly_once() -> None:
    for sizes, page_size in itertools.product(_small_batches(), range(1, 7)):
        total = count_pages(sizes, page_size)
        pages = page_specs(sizes, page_size, 0, ALL)
        context = f"stage sizes {sizes}, page size {page_size}"
        assert len(pages) == total, context
        assert [page.page_no for page in pages] == list(range(total)), context
        assert all(0 < page.item_count <= page_size for page in pages), context
        covered = [(page.stage, page.first_pos + offset)
                   for page in pages for offset in range(page.item_count)]
        expected = [(stage, pos) for stage, count in sizes for pos in range(count)]
        assert covered == expected, context  # each (stage, pos) once, in order
        for start in range(total + 2):
            for limit in (1, 2, 3, total + 1):
                window = page_specs(sizes, page_size, start, limit)
                assert window == pages[start:start + limit], f"{context}, window {start}+{limit}"


def test_seeding_window_by_window_creates_every_page_once() -> None:
    sizes = [[0, 7], [1, 0], [2, 9], [5, 1]]
    created: list[PageSpec] = []
    while len(created) < count_pages(sizes, 3):
        created += page_specs(sizes, 3, len(created), 2)
    assert created == page_specs(sizes, 3, 0, ALL)


def test_the_stage_of_a_page_follows_the_stage_sizes() -> None:
    sizes = [[0, 3], [5, 1], [9, 4]]  # page size 2: pages 0-1 stage 0, 2 stage 5, 3-4 stage 9
    assert [stage_of_page(sizes, 2, page_no) for page_no in range(6)] == [0, 0, 5, 9, 9, None]
