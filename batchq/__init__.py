"""batchq: a distributed batch-job service with exact counts.

This package's top level is the public API for writing batch types::

    from batchq import ItemContext, ItemFailed, ItemRetryPolicy, RetryItem, batch_type

    @batch_type("send-invoice", page_size=50,
                retry=ItemRetryPolicy(max_attempts=5, transient=(ConnectionError,)))
    def send_invoice(payload, ctx: ItemContext):
        if not payload.get("email"):
            raise ItemFailed("no e-mail address")
        if mail_server_busy():
            raise RetryItem("the mail server is busy", after=30)

Everything else in ``batchq`` is the service's own code (docs/architecture.md);
it imports neither ``api`` nor ``workers``, which import it.
"""

from batchq.batch_types.context import (
    BatchSummary,
    ItemContext,
    ItemFailed,
    ItemHandler,
    PostBatchStep,
    RetryItem,
    Source,
    SourceChunk,
)
from batchq.batch_types.registry import BatchType, Registry, batch_type
from batchq.domain.results import PostBatchResult, ResultFile
from batchq.domain.retry_policy import ItemRetryPolicy

__version__ = "0.1.0"

__all__ = [
    "BatchSummary",
    "BatchType",
    "ItemContext",
    "ItemFailed",
    "ItemHandler",
    "ItemRetryPolicy",
    "PostBatchResult",
    "PostBatchStep",
    "Registry",
    "ResultFile",
    "RetryItem",
    "Source",
    "SourceChunk",
    "__version__",
    "batch_type",
]
