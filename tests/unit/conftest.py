"""Fixtures of the unit tests: a migrated SQLite file per test, a runtime on it, test types."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from batchq.batch_types.context import ItemContext, ItemFailed
from batchq.batch_types.loading import load_types
from batchq.batch_types.registry import BatchType, Registry
from batchq.runtime import Runtime
from batchq.settings import Settings
from batchq.storage import Storage
from batchq.storage.engine import create_engine
from batchq.storage.migrate import upgrade
from batchq.storage.throttling import StartGate

from .support import Calls, FakeDispatcher, MakeRuntime, NewType, authenticated_client


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = "sqlite:///" + str(tmp_path / "batchq.db")
    upgrade(url)
    return url


@pytest.fixture
def registry() -> Registry:
    """The test's batch types: the built-ins, and those ``new_type`` adds."""
    return load_types(())


@pytest.fixture
def make_runtime(database_url: str, tmp_path: Path, registry: Registry) -> Iterator[MakeRuntime]:
    """Runtimes on the test's database; each one a process with its own engine and dispatcher.

    One page per execute message unless ``execute_slice_seconds`` says otherwise,
    so a test decides exactly which pages run. Every batch is seeded by a seed
    message unless ``small_batch_pages`` says otherwise (tests/unit/test_small_batches.py).
    """
    engines = []

    def make(dispatcher: FakeDispatcher | None = None, **overrides: Any) -> Runtime:
        options: dict[str, Any] = {"execute_slice_seconds": 0.0, "small_batch_pages": 0,
                                   **overrides}
        settings = Settings(data_dir=tmp_path / "data", database_url=database_url, **options)
        engine = create_engine(database_url)
        engines.append(engine)
        gate = StartGate(settings.tenant_limit_rules)
        return Runtime(settings, Storage(engine, gate), registry, dispatcher or FakeDispatcher())

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def rt(make_runtime: MakeRuntime) -> Runtime:
    return make_runtime()


@pytest.fixture
def app(rt: Runtime) -> Flask:
    """The API over ``rt``; modules that need other settings define their own."""
    return create_app(runtime=rt)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client that authenticates as a system user."""
    return authenticated_client(app)


@pytest.fixture
def new_type(registry: Registry) -> NewType:
    """Register a batch type under a fresh code; its handler records every run.

    Then it calls ``handler``, or, like ``echo``, fails a payload ``{"fail": "msg"}``
    with ``msg``.
    """

    def register(handler: Callable[[Any, ItemContext], Any] | None = None,
                 **options: Any) -> tuple[str, Calls]:
        calls = Calls()

        def recording_handler(payload: Any, ctx: ItemContext) -> Any:
            calls.runs.append((ctx.key, ctx.stage, payload))
            if handler is not None:
                return handler(payload, ctx)
            if isinstance(payload, dict) and "fail" in payload:
                raise ItemFailed(str(payload["fail"]))
            return payload

        code = f"unit-{uuid.uuid4().hex[:12]}"
        registry.add(BatchType(code=code, handler=recording_handler, **options))
        return code, calls

    return register
