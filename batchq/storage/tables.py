"""The SQLAlchemy Core tables; Alembic migrations must equal them (tested)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_ACTIVE_PROCESS = "process_run AND status IN ('Waiting', 'Processing', 'Cancelling')"

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("suspended", sa.Boolean, nullable=False, default=False),
    # Set when the batch drains: "cancel" (user) or "abort" (failure threshold).
    sa.Column("stop_reason", sa.String(16)),
    sa.Column("tenant_id", sa.String(200)),
    # The creator's name, as shown (createUserId); "system:..." for batchq's own runs.
    sa.Column("create_user_id", sa.String(200)),
    # The creator's stable id (users.id), which ownership follows: a user removed and
    # added again under the same name is another user. NULL: batchq itself created it.
    sa.Column("owner_id", sa.String(36)),
    sa.Column("description", sa.Text),
    sa.Column("params", sa.JSON, nullable=False),
    # The values of the type's write-only params (batchq.domain.secret_params): never shown.
    sa.Column("secret_params", sa.JSON),
    sa.Column("total_items", sa.BigInteger, nullable=False, default=0),
    sa.Column("processed_items", sa.BigInteger, nullable=False, default=0),
    sa.Column("failed_items", sa.BigInteger, nullable=False, default=0),
    sa.Column("total_jobs", sa.Integer, nullable=False, default=0),
    sa.Column("jobs_created", sa.Integer, nullable=False, default=0),
    sa.Column("jobs_completed", sa.Integer, nullable=False, default=0),
    sa.Column("page_size", sa.Integer, nullable=False),
    sa.Column("jobs_per_seed", sa.Integer, nullable=False),
    # [[stage, item count], ...] in stage order: pages are derived from it, no item scan.
    sa.Column("stage_sizes", sa.JSON, nullable=False),
    sa.Column("failure_threshold", sa.Float),
    sa.Column("retention_days", sa.Integer, nullable=False),
    sa.Column("progress_description", sa.Text),
    sa.Column("result", sa.JSON),
    sa.Column("failure_reason", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    # finished_at + retention_days: the cleanup task deletes the batch after it.
    sa.Column("expires_at", sa.DateTime),
    # Last time a seed step ran; the monitor re-sends a seed that stalled.
    sa.Column("seeded_at", sa.DateTime),
    # Won once by the finaliser that runs the post-batch step (exactly once).
    sa.Column("finalizer", sa.String(64)),
    sa.Column("finalizing_since", sa.DateTime),
    # Source batches (a type that finds its own items): where the seed resumes
    # reading, saved in the transaction that stores the items read before it.
    sa.Column("source_cursor", sa.JSON),
    # NULL for batches posted with their items; False until a source is read to its end.
    sa.Column("source_exhausted", sa.Boolean),
    # Reads in a row at which the source raised; reset by a chunk stored (batchq.engine.sources).
    sa.Column("source_failures", sa.Integer, nullable=False, default=0,
              server_default=sa.text("0")),
    # Started from the batch-process registry or a schedule (the batch-process API), not posted.
    sa.Column("process_run", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
    # Where the completion webhooks go (docs/events-and-webhooks.md); None: no webhook.
    sa.Column("callback_url", sa.Text),
    # A retry batch (POST /batches/{id}/retry): the batch it retries and which of its items.
    sa.Column("retry_of", sa.String(36)),
    sa.Column("retry_selection", sa.String(32)),
    # The item retry policy in force (numbers only; transient exception classes are the type's).
    sa.Column("retry_policy", sa.JSON),
    # Retry pages among total_jobs / jobs_created / jobs_completed (batchq.storage.retries).
    sa.Column("retry_jobs", sa.Integer, nullable=False, default=0, server_default=sa.text("0")),
    sa.Column("retry_jobs_completed", sa.Integer, nullable=False, default=0,
              server_default=sa.text("0")),
    # Rethrottling (PATCH /batches/{id}): items per second across all workers, pages at once.
    sa.Column("max_items_per_second", sa.Float),
    sa.Column("max_concurrent_jobs", sa.Integer),
    # [{"days", "from", "to", "timezone"}, ...]: a page starts only inside one of them
    # (batchq.domain.run_windows); NULL: at any time.
    sa.Column("run_windows", sa.JSON),
    # A unique integer alias (the CRM BatchTask API's int32 Id): from a sequence on
    # PostgreSQL, max + 1 on SQLite (batchq.storage.batches).
    sa.Column("number", sa.Integer, sa.Sequence("batches_number_seq"), unique=True),
    # The CRM BatchTask API's fields batchq keeps as sent (Context, Request, ...); else NULL.
    sa.Column("task_info", sa.JSON),
    sa.Index(None, "status"),
    sa.Index(None, "expires_at"),
    # GET /batches: the read-permission filters and the sorts (batchq.service.listing).
    sa.Index(None, "created_at"),
    sa.Index(None, "tenant_id", "created_at"),
    sa.Index(None, "create_user_id", "created_at"),
    sa.Index(None, "owner_id", "created_at"),
    sa.Index(None, "type", "created_at"),
    sa.Index(None, "status", "type", "created_at"),
    # A batch's retries, for its "retries" list.
    sa.Index(None, "retry_of"),
    # Never two active runs of one batch process: a second start fails on this index.
    sa.Index("uq_batches_active_process", "type", unique=True,
             postgresql_where=sa.text(_ACTIVE_PROCESS), sqlite_where=sa.text(_ACTIVE_PROCESS)),
)

pages = sa.Table(
    "pages",
    metadata,
    sa.Column("batch_id", sa.String(36), primary_key=True),
    sa.Column("page_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("stage", sa.Integer, nullable=False),
    sa.Column("first_pos", sa.BigInteger, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("worker", sa.String(200)),
    sa.Column("queued_at", sa.DateTime),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("lease_until", sa.DateTime),
    sa.Column("succeeded", sa.Integer, nullable=False, default=0),
    sa.Column("failed", sa.Integer, nullable=False, default=0),
    # 1 for a page of the batch's own ranges; n > 1 for a retry page, whose items (listed in
    # item_retries) run their n-th attempt, not before not_before.
    sa.Column("item_attempt", sa.Integer, nullable=False, default=1, server_default=sa.text("1")),
    sa.Column("not_before", sa.DateTime),
    # Positions of the page's items whose handler ignored its deadline, so that its worker
    # process was ended (a JSON list; NULL: none): the page's next run fails them at once.
    sa.Column("hung_positions", sa.JSON),
    sa.Index(None, "batch_id", "status", "page_no"),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("batch_id", sa.String(36), primary_key=True),
    sa.Column("stage", sa.Integer, primary_key=True, autoincrement=False),
    # Position within the stage: a page is the range [first_pos, first_pos + item_count).
    sa.Column("pos", sa.BigInteger, primary_key=True, autoincrement=False),
    # Position in the input, for listing items as they were sent.
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("key", sa.String(500), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    # GET /batches/{id}/items lists items in input order.
    sa.Index(None, "batch_id", "seq"),
)

item_errors = sa.Table(
    "item_errors",
    metadata,
    sa.Column("batch_id", sa.String(36), primary_key=True),
    sa.Column("stage", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pos", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("key", sa.String(500), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("failed_at", sa.DateTime, nullable=False),
    # How many times the item ran before this, its last, failure.
    sa.Column("attempts", sa.Integer, nullable=False, default=1, server_default=sa.text("1")),
    sa.Index(None, "batch_id", "seq"),
)

item_retries = sa.Table(
    "item_retries",
    metadata,
    # An item whose transient failure is retried on a later page: one row while the retry is
    # pending, deleted in the transaction that counts its retry page (batchq.storage.retries).
    sa.Column("batch_id", sa.String(36), primary_key=True),
    sa.Column("stage", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pos", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("page_no", sa.Integer, nullable=False),
    # The message of the failure that is being retried (not an item error: only the last
    # failure of an item counts).
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Index(None, "batch_id", "page_no"),
)

users = sa.Table(
    "users",
    metadata,
    # Batches record the name as create_user_id (what a person reads) and the id as owner_id
    # (what ownership follows, never reused).
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("id", sa.String(36), nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(200)),
    # A JSON list of batchq.permissions.Function values.
    sa.Column("functions", sa.JSON, nullable=False),
    sa.Column("is_system", sa.Boolean, nullable=False, default=False),
    # sha256 of the secret token, hex; the token itself is shown once and never stored.
    # NULL once the token was revoked: no credential works until a new one is issued.
    sa.Column("token_hash", sa.String(64), unique=True),
    # When the token stops working; NULL: never.
    sa.Column("token_expires_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

result_files = sa.Table(
    "result_files",
    metadata,
    # A file a post-batch step produced (e.g. a CSV report), at GET /batches/{id}/result-file.
    sa.Column("batch_id", sa.String(36), primary_key=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("media_type", sa.String(200), nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    # A POST with an Idempotency-Key: a re-post with the same key and body gets this response.
    # The stable id of the user (users.id) the key belongs to: a user added again under an
    # old name does not inherit its keys.
    sa.Column("user_id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    # sha256 of the request (path, query and body), hex: another body under the key is a 422.
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("batch_id", sa.String(36)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index(None, "created_at"),
)

idempotency_key_batches = sa.Table(
    "idempotency_key_batches",
    metadata,
    # The batches a key's request made one per tenant (POST /batches/multi-tenant), each row
    # written in its batch's creating transaction: a retry resumes the request from them.
    sa.Column("user_id", sa.String(36), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("tenant_id", sa.String(200), primary_key=True),
    sa.Column("batch_id", sa.String(36), nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    # One completion webhook of one batch, written in the transaction that gave the batch its
    # final status. The id is the webhook-id: the same on every attempt.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("batch_id", sa.String(36), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    # Whose secret signs it ("" for batches without a tenant).
    sa.Column("tenant_key", sa.String(200), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    # The JSON sent: the same bytes on every attempt, since they are signed.
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime),
    # When a deliver message was last sent; the sweep re-sends one that got lost.
    sa.Column("dispatched_at", sa.DateTime),
    # A worker sending it holds it until then; one that died lets it go.
    sa.Column("claimed_until", sa.DateTime),
    sa.Column("last_status_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("finished_at", sa.DateTime),
    # Exactly one delivery per event per batch, however many finalisers race.
    sa.Index(None, "batch_id", "event", unique=True),
    sa.Index(None, "status", "next_attempt_at"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    # The delivery log: every attempt, what the receiver answered, how long it took.
    sa.Column("delivery_id", sa.String(64), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("batch_id", sa.String(36), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Index(None, "batch_id"),
)

webhook_secrets = sa.Table(
    "webhook_secrets",
    metadata,
    # A tenant's signing secret (whsec_...); "" is the key of batches without a tenant.
    sa.Column("tenant_key", sa.String(200), primary_key=True),
    sa.Column("secret", sa.String(100), nullable=False),
    # After a rotation, the previous secret signs too until previous_until.
    sa.Column("previous_secret", sa.String(100)),
    sa.Column("previous_until", sa.DateTime),
    sa.Column("rotated_at", sa.DateTime, nullable=False),
)

worker_heartbeats = sa.Table(
    "worker_heartbeats",
    metadata,
    # One row per worker process, named as its pages' ``worker`` (host:pid) and renewed every
    # few seconds while it lives; the monitor re-runs the pages of one whose row went stale.
    sa.Column("worker", sa.String(200), primary_key=True),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("beat_at", sa.DateTime, nullable=False),
    sa.Index(None, "beat_at"),
)
