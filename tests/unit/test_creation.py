"""Creating a batch: items are validated and numbered, and either all or nothing is stored."""

from __future__ import annotations

import math
from typing import Any

import pytest
import sqlalchemy as sa
from marshmallow import Schema, fields, validate

from api.errors import status_code_of
from batchq.domain import items as item_rules
from batchq.domain.items import MAX_STAGE, MIN_STAGE
from batchq.domain.statuses import BatchStatus
from batchq.errors import InvalidBatch, TooManyItems, UnknownBatchType
from batchq.runtime import Runtime
from batchq.service import creation
from batchq.storage.tables import batches, items, pages

from .support import MakeRuntime, NewType, create, dispatcher_of, ok_items


def stored_items(rt: Runtime) -> list[dict[str, Any]]:
    query = sa.select(items).order_by(items.c.seq)
    with rt.storage.engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def row_count(rt: Runtime, table: sa.Table) -> int:
    with rt.storage.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def assert_nothing_stored(rt: Runtime) -> None:
    assert row_count(rt, batches) == 0
    assert row_count(rt, items) == 0
    assert row_count(rt, pages) == 0
    assert dispatcher_of(rt).seeds == []


class PositiveN(Schema):
    n = fields.Int(required=True, validate=validate.Range(min=1))


def test_bare_payloads_are_keyed_by_their_index(rt: Runtime) -> None:
    create(rt, "echo", [{"a": 1}, "two", 3])
    assert [(row["key"], row["payload"]) for row in stored_items(rt)] == [
        ("0", {"a": 1}), ("1", "two"), ("2", 3),
    ]


def test_item_objects_keep_their_key_payload_and_stage(rt: Runtime) -> None:
    create(rt, "echo", [
        {"key": "order-7", "payload": {"qty": 2}, "stage": 1},
        {"key": "order-8", "payload": None},
        {"payload": [1, 2]},
    ])
    rows = [(row["key"], row["payload"], row["stage"], row["pos"], row["seq"])
            for row in stored_items(rt)]
    assert rows == [
        ("order-7", {"qty": 2}, 1, 0, 0),
        ("order-8", None, 0, 0, 1),
        ("2", [1, 2], 0, 1, 2),
    ]


@pytest.mark.parametrize(("item", "named"), [
    ({"key": "a", "paylaod": {"n": 1}}, ["'paylaod'", "no payload"]),
    ({"key": "x", "payload": 1, "note": "mine"}, ["'note'"]),
    ({"stage": 1, "n": 2}, ["'n'", "no payload"]),
    ({"key": "only"}, ["no payload"]),
], ids=["misspelt-payload", "extra-field", "stage-without-payload", "key-alone"])
def test_an_item_object_with_unknown_fields_is_refused_naming_its_index_and_fields(
    rt: Runtime, item: dict[str, Any], named: list[str],
) -> None:
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", [{"key": "fine", "payload": 1}, item])
    [message] = refused.value.details["itemErrors"]["1"]
    assert all(part in message for part in named), message
    assert list(refused.value.details["itemErrors"]) == ["1"]
    assert_nothing_stored(rt)


def test_a_bare_payload_without_item_fields_stays_a_payload_and_a_wrapped_one_too(
    rt: Runtime,
) -> None:
    create(rt, "echo", [{"note": "mine"}, {"payload": {"key": "k", "stage": "text"}}])
    assert [(row["key"], row["payload"]) for row in stored_items(rt)] == [
        ("0", {"note": "mine"}), ("1", {"key": "k", "stage": "text"}),
    ]


@pytest.mark.parametrize("stage", [-1, -(2**31)])
def test_a_negative_stage_is_refused_naming_the_item_and_the_field(rt: Runtime, stage: int) -> None:
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", [{"key": "a", "payload": 1, "stage": stage}])
    assert refused.value.details["itemErrors"]["0"] == [
        f"stage must be from 0 to {MAX_STAGE}, not {stage}"]
    assert_nothing_stored(rt)


def test_a_new_batch_waits_with_its_totals_and_its_seed_is_sent(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(5), page_size=2, description="five")
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert batch["status"] == BatchStatus.WAITING
    assert (batch["total_items"], batch["total_jobs"], batch["jobs_created"]) == (5, 3, 0)
    assert (batch["processed_items"], batch["failed_items"]) == (0, 0)
    assert batch["description"] == "five"
    assert dispatcher_of(rt).seeds == [batch_id]


def test_a_repeated_key_refuses_the_batch_and_names_the_repeating_indexes(rt: Runtime) -> None:
    raw = [{"key": "a", "payload": 1}, {"key": "b", "payload": 2},
           {"key": "a", "payload": 3}, "bare", {"key": "b", "payload": 4}]
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", raw)
    errors = refused.value.details["itemErrors"]
    assert errors == {"2": ["duplicate key 'a', first used by item 0"],
                      "4": ["duplicate key 'b', first used by item 1"]}
    assert refused.value.details["refusedItems"] == 2
    assert_nothing_stored(rt)


def test_repeated_keys_across_chunks_are_found_by_the_database(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_rules, "CHUNK_SIZE", 2)  # the first occurrences are inserted first
    raw = [{"key": f"k{n % 4}", "payload": n} for n in range(7)]
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", raw)
    errors = refused.value.details["itemErrors"]
    assert errors == {str(n): [f"duplicate key 'k{n - 4}', first used by item {n - 4}"]
                      for n in (4, 5, 6)}
    assert_nothing_stored(rt)


def test_repeated_keys_and_other_refusals_are_named_together_in_input_order(
    rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(item_schema=PositiveN())
    raw = [{"key": "a", "payload": {"n": 1}}, {"key": "b", "payload": {"n": -1}},
           {"key": "a", "payload": {"n": 2}}, {"key": "c", "payload": {"n": 0}}]
    with pytest.raises(InvalidBatch) as refused:
        create(rt, code, raw)
    errors = refused.value.details["itemErrors"]
    assert list(errors) == ["1", "2", "3"]
    assert errors["2"] == ["duplicate key 'a', first used by item 0"]
    assert errors["1"][0].startswith("n: ")
    assert refused.value.details["refusedItems"] == 3
    assert "3 of 4 items were refused" in refused.value.message
    assert_nothing_stored(rt)


def test_a_batch_may_have_at_most_max_stages_different_stages(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_rules, "MAX_STAGES", 3)
    raw = [{"key": str(n), "payload": n, "stage": n % 5} for n in range(6)]
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", raw)
    assert refused.value.details["itemErrors"] == {
        "3": ["a batch may have at most 3 different stages"],
        "4": ["a batch may have at most 3 different stages"]}
    assert_nothing_stored(rt)


def test_at_most_a_hundred_refused_items_are_named_but_all_are_counted(rt: Runtime) -> None:
    raw = [{"key": "same", "payload": n} for n in range(151)]
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", raw)
    assert list(refused.value.details["itemErrors"]) == [str(n) for n in range(1, 101)]
    assert refused.value.details["refusedItems"] == 150
    assert "150 of 151 items were refused" in refused.value.message


def test_a_bare_payload_and_an_object_may_collide_on_a_key(rt: Runtime) -> None:
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", ["first", {"key": "0", "payload": "second"}])
    assert list(refused.value.details["itemErrors"]) == ["1"]


def test_an_empty_item_list_is_refused(rt: Runtime) -> None:
    with pytest.raises(InvalidBatch, match="empty"):
        create(rt, "echo", [])
    assert_nothing_stored(rt)


def test_more_items_than_max_items_is_refused_with_413(make_runtime: MakeRuntime) -> None:
    rt = make_runtime(max_items=3)
    with pytest.raises(TooManyItems) as refused:
        create(rt, "echo", ok_items(4))
    assert status_code_of(refused.value) == 413
    assert refused.value.details == {"maxItems": 3}
    assert_nothing_stored(rt)


def test_exactly_max_items_is_accepted(make_runtime: MakeRuntime) -> None:
    rt = make_runtime(max_items=3)
    create(rt, "echo", ok_items(3))
    assert row_count(rt, items) == 3


def test_an_unknown_batch_type_is_refused(rt: Runtime) -> None:
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "no-such-type", ok_items(1))
    assert isinstance(refused.value.__cause__, UnknownBatchType)
    assert status_code_of(refused.value) == 400
    assert "echo" not in refused.value.message  # the registered types are for administrators
    assert_nothing_stored(rt)


def test_type_codes_are_case_sensitive(rt: Runtime) -> None:
    with pytest.raises(InvalidBatch, match="codes are case-sensitive: did you mean 'echo'"):
        create(rt, "Echo", ok_items(1))


def test_items_refused_by_the_type_schema_store_nothing(rt: Runtime, new_type: NewType) -> None:
    code, _calls = new_type(item_schema=PositiveN())
    raw = [{"n": 1}, {"n": 0}, {"n": "x"}, {"n": 4}, {}]
    with pytest.raises(InvalidBatch) as refused:
        create(rt, code, raw)
    errors = refused.value.details["itemErrors"]
    assert sorted(errors) == ["1", "2", "4"]
    assert all(message.startswith("n: ") for message in errors["4"])
    assert_nothing_stored(rt)


def test_items_the_type_schema_accepts_are_stored(rt: Runtime, new_type: NewType) -> None:
    code, _calls = new_type(item_schema=PositiveN())
    create(rt, code, [{"n": 1}, {"key": "z", "payload": {"n": 2}}])
    assert row_count(rt, items) == 2


class Limits(Schema):
    limit = fields.Int(required=True, validate=validate.Range(min=1))
    mode = fields.Str(validate=validate.OneOf(["fast", "slow"]))


def test_params_refused_by_the_type_params_schema_store_nothing(
    rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(params_schema=Limits())
    with pytest.raises(InvalidBatch) as refused:
        create(rt, code, ok_items(2), params={"limit": 0, "mode": "odd", "extra": 1})
    assert status_code_of(refused.value) == 400
    assert refused.value.details["field"] == "params"
    assert sorted(refused.value.details["paramsErrors"]) == ["extra", "limit", "mode"]
    assert "limit: Must be greater than or equal to 1" in refused.value.message
    assert_nothing_stored(rt)


def test_params_the_type_params_schema_accepts_are_stored_as_given(
    rt: Runtime, new_type: NewType
) -> None:
    code, _calls = new_type(params_schema=Limits())
    batch_id = create(rt, code, ok_items(1), params={"limit": 5})
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None and batch["params"] == {"limit": 5}


def test_a_type_without_params_schema_takes_any_json_params(rt: Runtime) -> None:
    batch_id = create(rt, "echo", ok_items(1), params={"anything": [1, {"goes": True}]})
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None and batch["params"] == {"anything": [1, {"goes": True}]}


def test_a_refused_item_after_the_first_chunk_stores_nothing(
    rt: Runtime, new_type: NewType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_rules, "CHUNK_SIZE", 2)  # the first chunks reach the database
    code, _calls = new_type(item_schema=PositiveN())
    with pytest.raises(InvalidBatch):
        create(rt, code, [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}, {"n": -5}])
    assert_nothing_stored(rt)


def test_more_items_than_max_items_after_the_first_chunk_stores_nothing(
    make_runtime: MakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(item_rules, "CHUNK_SIZE", 2)
    rt = make_runtime(max_items=5)
    with pytest.raises(TooManyItems):
        create(rt, "echo", iter(ok_items(6)))
    assert_nothing_stored(rt)


@pytest.mark.parametrize("key", ["", 7, None, "k" * 501])
def test_a_key_that_is_not_a_short_non_empty_string_is_refused(rt: Runtime, key: Any) -> None:
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", [{"key": "fine", "payload": 1}, {"key": key, "payload": 2}])
    assert list(refused.value.details["itemErrors"]) == ["1"]


@pytest.mark.parametrize("stage", ["1", 1.5, True])
def test_a_stage_that_is_not_an_integer_is_refused(rt: Runtime, stage: Any) -> None:
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", [{"key": "a", "payload": 1, "stage": stage}])
    assert refused.value.details["itemErrors"] == {"0": ["stage must be an integer"]}


def test_stages_count_their_items_and_pages_separately(rt: Runtime) -> None:
    raw = ([{"key": f"c{n}", "payload": n, "stage": 2} for n in range(5)]
           + [{"key": f"b{n}", "payload": n, "stage": 0} for n in range(3)]
           + [{"key": f"w{n}", "payload": n, "stage": 1} for n in range(4)])
    batch_id = create(rt, "echo", raw, page_size=2)
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert batch["stage_sizes"] == [[0, 3], [1, 4], [2, 5]]
    assert batch["total_items"] == 12
    assert batch["total_jobs"] == 2 + 2 + 3
    positions = {(row["key"]): (row["stage"], row["pos"]) for row in stored_items(rt)}
    assert positions["c0"] == (2, 0) and positions["c4"] == (2, 4)
    assert positions["b2"] == (0, 2) and positions["w3"] == (1, 3)


def test_a_type_may_give_each_item_its_stage(rt: Runtime, new_type: NewType) -> None:
    order = {"Block": 0, "Chain": 1, "Wholesaler": 2, "Customer": 3}
    code, _calls = new_type(stage_of=lambda payload: order[payload["kind"]])
    batch_id = create(rt, code, [{"kind": "Customer"}, {"kind": "Block"}, {"kind": "Chain"}])
    batch = rt.storage.batches.get(batch_id)
    assert batch is not None
    assert batch["stage_sizes"] == [[0, 1], [1, 1], [3, 1]]


def test_an_item_the_type_cannot_stage_is_refused(rt: Runtime, new_type: NewType) -> None:
    code, _calls = new_type(stage_of=lambda payload: {"Block": 0}[payload["kind"]])
    with pytest.raises(InvalidBatch) as refused:
        create(rt, code, [{"kind": "Block"}, {"kind": "Planet"}])
    assert list(refused.value.details["itemErrors"]) == ["1"]
    assert_nothing_stored(rt)


def test_options_come_from_the_request_then_the_type_then_the_settings(
    make_runtime: MakeRuntime, new_type: NewType
) -> None:
    rt = make_runtime(page_size=50, jobs_per_seed=9, failure_threshold=0.3, retention_days=4)
    code, _calls = new_type(page_size=7, failure_threshold=None)
    from_type = rt.storage.batches.get(create(rt, code, ok_items(1)))
    from_settings = rt.storage.batches.get(create(rt, "echo", ok_items(1)))
    from_request = rt.storage.batches.get(create(rt, code, ok_items(1), page_size=3,
                                                 jobs_per_seed=2, failure_threshold=0.9,
                                                 retention_days=1))
    assert from_type is not None and from_settings is not None and from_request is not None
    assert (from_type["page_size"], from_type["jobs_per_seed"],
            from_type["failure_threshold"], from_type["retention_days"]) == (7, 9, None, 4)
    assert (from_settings["page_size"], from_settings["failure_threshold"]) == (50, 0.3)
    assert (from_request["page_size"], from_request["jobs_per_seed"],
            from_request["failure_threshold"], from_request["retention_days"]) == (3, 2, 0.9, 1)


def test_a_null_failure_threshold_in_the_request_disables_it(rt: Runtime) -> None:
    batch = rt.storage.batches.get(create(rt, "echo", ok_items(1), failure_threshold=None))
    assert batch is not None
    assert batch["failure_threshold"] is None


@pytest.mark.parametrize("threshold", [0, -0.1, 1.01])
def test_a_failure_threshold_outside_zero_to_one_is_refused(
    rt: Runtime, threshold: float
) -> None:
    with pytest.raises(InvalidBatch, match="failureThreshold"):
        create(rt, "echo", ok_items(1), failure_threshold=threshold)
    assert_nothing_stored(rt)


@pytest.mark.parametrize("option", ["page_size", "jobs_per_seed"])
def test_a_negative_page_size_or_jobs_per_seed_is_refused(rt: Runtime, option: str) -> None:
    with pytest.raises(InvalidBatch):
        create(rt, "echo", ok_items(1), **{option: -1})
    assert_nothing_stored(rt)


@pytest.mark.parametrize("option", ["page_size", "jobs_per_seed", "retention_days"])
def test_a_zero_page_size_jobs_per_seed_or_retention_is_refused_by_the_engine(
    rt: Runtime, option: str
) -> None:
    with pytest.raises(InvalidBatch):
        create(rt, "echo", ok_items(1), **{option: 0})


@pytest.mark.parametrize("item", [
    {"key": "nan", "payload": {"price": math.nan}},
    {"key": "nul\x00byte", "payload": 1},
    {"key": "far", "payload": 1, "stage": 2**31},
], ids=["nan-payload", "nul-in-key", "stage-beyond-int32"])
def test_an_item_postgresql_cannot_store_is_refused_with_its_index(
    rt: Runtime, item: dict[str, Any]
) -> None:
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", [{"key": "fine", "payload": 1}, item])
    assert list(refused.value.details["itemErrors"]) == ["1"]


@pytest.mark.parametrize("payload", [
    {"rows": [{"price": math.inf}]},
    [1, 2, -math.inf],
    {"deep": {"name": "a\x00b"}},
    {"key\x00": 1},
    {"at": {1, 2}},
], ids=["nested-inf", "negative-inf-in-list", "nul-in-nested-string", "nul-in-payload-key",
        "set-is-not-json"])
def test_a_payload_postgresql_cannot_store_is_refused_wherever_the_value_hides(
    rt: Runtime, payload: Any
) -> None:
    with pytest.raises(InvalidBatch) as refused:
        create(rt, "echo", [{"key": "fine", "payload": 1}, {"key": "bad", "payload": payload}])
    assert list(refused.value.details["itemErrors"]) == ["1"]
    assert refused.value.details["itemErrors"]["1"][0].startswith("payload ")
    assert_nothing_stored(rt)


def test_json_values_that_only_look_suspicious_are_accepted(rt: Runtime) -> None:
    payloads = [{"text": "a literal \\u0000 escape", "n": 1.5, "ok": True, "none": None},
                ("a", "tuple"), {1: "int key"}, -0.0]
    batch_id = create(rt, "echo", [{"key": f"k{n}", "payload": p, "stage": MAX_STAGE if n else
                                    MIN_STAGE} for n, p in enumerate(payloads)])
    assert row_count(rt, items) == len(payloads)
    assert batch_id


@pytest.mark.parametrize("params", [{"limit": math.nan}, {"to": ["ops\x00"]}])
def test_params_postgresql_cannot_store_are_refused(rt: Runtime, params: Any) -> None:
    with pytest.raises(InvalidBatch, match="params"):
        create(rt, "echo", ok_items(1), params=params)
    assert_nothing_stored(rt)


@pytest.mark.parametrize("option", ["description", "tenant_id"])
def test_a_description_or_tenant_with_u0000_is_refused(rt: Runtime, option: str) -> None:
    with pytest.raises(InvalidBatch, match="U\\+0000"):
        create(rt, "echo", ok_items(1), **{option: "a\x00b"})
    assert_nothing_stored(rt)


def test_a_retention_beyond_a_hundred_years_is_refused_by_the_engine(rt: Runtime) -> None:
    with pytest.raises(InvalidBatch, match="retentionDays"):
        create(rt, "echo", ok_items(1), retention_days=creation.MAX_RETENTION_DAYS + 1)
    create(rt, "echo", ok_items(1), retention_days=creation.MAX_RETENTION_DAYS)
