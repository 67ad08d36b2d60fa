"""Building a process's registry: the built-in types, then the user's.

User types live in the user's own modules, named by ``BATCHQ_TYPES`` (a comma
list of modules) or the ``batchq.types`` entry-point group (each entry names a
module); every handler such a module declares with ``@batch_type`` is registered.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

from batchq.batch_types import builtin, http
from batchq.batch_types.registry import Registry
from batchq.errors import ConfigurationError


def load_types(modules: Iterable[str]) -> Registry:
    """A registry of the built-in types, the named modules' and the entry points' types."""
    registry = Registry()
    registry.add_module(builtin)
    registry.add_module(http)
    for name in modules:
        registry.add_module(_import_type_module(name))
    for entry in entry_points(group="batchq.types"):
        registry.add_module(_load_entry_point(entry))
    return registry


def _import_type_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise ConfigurationError(
            f"Batch type module {name!r} (from BATCHQ_TYPES) failed to import: {exc}"
        ) from exc


def _load_entry_point(entry: EntryPoint) -> ModuleType:
    try:
        loaded = entry.load()
    except Exception as exc:
        raise ConfigurationError(
            f"Batch type entry point {entry.name!r} ({entry.value}) failed to load: {exc}"
        ) from exc
    if not isinstance(loaded, ModuleType):
        raise ConfigurationError(f"Batch type entry point {entry.name!r} ({entry.value}) must "
                                 "name a module (its @batch_type handlers are registered)")
    return loaded
