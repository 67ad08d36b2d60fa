"""Write-only params: values a batch's handler needs but no reader of the batch may see.

A batch type names the top-level fields of its ``params`` that are secret
(``BatchType.secret_params``, e.g. the ``http`` type's ``secret_headers``).
Creation moves their values out of ``params`` into the batch's
``secret_params`` column, which no view, list, export, webhook or log line
reads; ``params`` keeps each secret field with every value replaced by
``MASK``, so a reader sees which secrets were given, never what they are. The
worker runs the handler (and the source and post-batch step) with both merged
(``run_params``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: What a reader sees in place of a secret value.
MASK = "[secret]"


def split_secrets(params: Mapping[str, Any], secret_fields: Iterable[str],
                  ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the params a reader may see, the secret values or None when there are none)."""
    shown = dict(params)
    secrets = {name: shown[name] for name in secret_fields if name in shown}
    for name, value in secrets.items():
        shown[name] = _masked(value)
    return shown, secrets or None


def _masked(value: Any) -> Any:
    # The names of secret headers stay visible (they say what was sent), their values not.
    if isinstance(value, Mapping):
        return {str(name): MASK for name in value}
    return MASK


def run_params(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The params a batch's handler runs with: what readers see, with the secrets put back."""
    return {**(batch["params"] or {}), **(batch.get("secret_params") or {})}
