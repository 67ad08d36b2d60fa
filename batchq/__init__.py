"""batchq: a distributed batch-job service with exact counts.

This package's top level is the public API for writing batch types::

    from batchq import ItemContext, ItemFailed, batch_type

    @batch_type("send-invoice", page_size=50)
    def send_invoice(payload, ctx: ItemContext):
        if not payload.get("email"):
            raise ItemFailed("no e-mail address")

Everything else in ``batchq`` is the service's own code (docs/architecture.md);
it imports neither ``api`` nor ``workers``, which import it.
"""

from batchq.batch_types.context import (
    BatchSummary,
    ItemContext,
    ItemFailed,
    ItemHandler,
    PostBatchStep,
    Source,
    SourceChunk,
)
from batchq.batch_types.registry import BatchType, Registry, batch_type
from batchq.domain.results import PostBatchResult, ResultFile

__version__ = "0.1.0"

__all__ = [
    "BatchSummary",
    "BatchType",
    "ItemContext",
    "ItemFailed",
    "ItemHandler",
    "PostBatchResult",
    "PostBatchStep",
    "Registry",
    "ResultFile",
    "Source",
    "SourceChunk",
    "__version__",
    "batch_type",
]
