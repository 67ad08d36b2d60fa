"""Settings, read from ``BATCHQ_*`` environment variables once into a typed object."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from batchq.domain.throttling import TenantLimits, parse_tenant_limits
from batchq.errors import ConfigurationError


@dataclass(frozen=True)
class Settings:
    """Everything batchq can be configured with; see docs/operations.md "Settings"."""

    data_dir: Path = Path("batchq-data")
    database_url: str = ""
    broker_url: str = ""
    types: tuple[str, ...] = ()
    # Defaults of new batches.
    page_size: int = 100
    jobs_per_seed: int = 100
    failure_threshold: float | None = 0.20
    retention_days: int = 30
    max_items: int = 1_000_000
    # Byte caps: a JSON body (parsed whole), each line of an NDJSON or CSV upload (one
    # item), a whole streamed upload. bench/upload_caps.py: they cost nothing.
    max_body_mb: int = 32
    max_line_kb: int = 1024
    max_upload_mb: int = 2048
    # Admission: active batches one user may have (0: no limit); Idempotency-Key lifetime.
    max_active_batches_per_user: int = 100
    idempotency_key_retention_hours: float = 24.0
    # The registry batch API: the batch type its jobs run, the most entities one job may
    # post (NoOfItems), and active jobs one user may have (its code of conduct; 0: no rule).
    registry_type: str = "retail-registry-import"
    registry_max_items: int = 10_000
    registry_max_active_jobs: int = 1
    # Engine tuning.
    max_queued_jobs: int = 4
    # A batch of at most this many pages gets them, queued, in the transaction creating it,
    # and needs no seed message (0: every batch is seeded by the seed task).
    small_batch_pages: int = 8
    execute_slice_seconds: float = 1.0
    lease_seconds: float = 60.0
    # The hard deadline of one item of a type that names none (batchq.engine.deadline).
    item_timeout_seconds: float = 3600.0
    requeue_after_seconds: float = 120.0
    # Worker processes renew a heartbeat row this often; one silent for lost_after is dead.
    worker_heartbeat_seconds: float = 2.0
    worker_lost_after_seconds: float = 10.0
    # A queued page this old is re-sent at once when the broker holds fewer messages than
    # there are such pages (it lost them: a restart), instead of after requeue_after.
    lost_message_after_seconds: float = 5.0
    # Redis hands a message nobody acknowledged to another worker after this long.
    broker_visibility_timeout_seconds: float = 3600.0
    max_attempts: int = 3
    # Per-tenant caps and defaults of rethrottling: a JSON object (batchq.domain.throttling).
    tenant_limits: str = ""
    monitor_interval_seconds: float = 5.0
    post_batch_timeout_seconds: float = 3600.0
    cleanup_interval_seconds: float = 86400.0
    # Outbound requests (the http type, webhooks): networks allowed despite the egress rule.
    egress_allow: tuple[str, ...] = ()
    # Live progress streams (GET /batches/{id}/events), per API process.
    sse_poll_seconds: float = 0.5
    sse_heartbeat_seconds: float = 15.0
    sse_idle_seconds: float = 120.0
    sse_max_stream_seconds: float = 900.0
    sse_max_streams: int = 100
    sse_max_streams_per_user: int = 10
    # Completion webhooks.
    webhook_timeout_seconds: float = 15.0
    webhook_max_attempts: int = 10
    webhook_retry_first_seconds: float = 10.0
    webhook_retry_max_seconds: float = 21600.0
    webhook_secret_overlap_hours: float = 24.0
    # GET /metrics: when set, it needs "Authorization: Bearer <this>" (a scraper's secret).
    metrics_token: str = ""
    # Request bodies (api/slow_bodies.py, api/gunicorn_config.py): a body that sends no byte
    # for this long, or averages less than this rate once the idle time has passed, is a 408.
    body_read_idle_seconds: float = 20.0
    body_min_bytes_per_second: float = 1000.0
    # Processes.
    host: str = "127.0.0.1"
    port: int = 8000
    worker_concurrency: int = 2

    def __post_init__(self) -> None:
        if not self.database_url:
            url = f"sqlite:///{(self.data_dir / 'batchq.db').resolve()}"
            object.__setattr__(self, "database_url", url)
        if not self.broker_url:
            object.__setattr__(self, "broker_url", "filesystem://")
        for name in ("page_size", "jobs_per_seed", "max_items", "max_queued_jobs", "max_attempts",
                     "max_body_mb", "max_line_kb", "max_upload_mb"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"BATCHQ_{name.upper()} must be at least 1")
        if self.small_batch_pages < 0:
            raise ConfigurationError("BATCHQ_SMALL_BATCH_PAGES must be 0 (off) or more")
        if self.max_active_batches_per_user < 0 or self.idempotency_key_retention_hours <= 0:
            raise ConfigurationError("BATCHQ_MAX_ACTIVE_BATCHES_PER_USER must be 0 (no limit) or "
                                     "more, BATCHQ_IDEMPOTENCY_KEY_RETENTION_HOURS positive")
        if self.failure_threshold is not None and not 0 < self.failure_threshold <= 1:
            raise ConfigurationError("BATCHQ_FAILURE_THRESHOLD must be in (0, 1] or 'none'")
        try:
            parse_tenant_limits(self.tenant_limits)
        except ValueError as exc:
            raise ConfigurationError(f"BATCHQ_TENANT_LIMITS {exc}") from None
        self._check_push_settings()
        self._check_recovery_settings()

    def _check_recovery_settings(self) -> None:
        """Heartbeats: a worker must be able to miss a beat or two before it counts as lost."""
        for name in ("worker_heartbeat_seconds", "lost_message_after_seconds",
                     "broker_visibility_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"BATCHQ_{name.upper()} must be positive")
        if self.worker_lost_after_seconds < 3 * self.worker_heartbeat_seconds:
            raise ConfigurationError("BATCHQ_WORKER_LOST_AFTER_SECONDS must be at least three "
                                     "times BATCHQ_WORKER_HEARTBEAT_SECONDS")

    def _check_push_settings(self) -> None:
        """The egress allow-list, the live streams' and the webhooks' settings."""
        for entry in self.egress_allow:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ConfigurationError(f"BATCHQ_EGRESS_ALLOW: {entry!r} is not an address or "
                                         "network (write it like 10.0.0.0/8)") from exc
        positive = ("sse_poll_seconds", "sse_heartbeat_seconds", "sse_idle_seconds",
                    "sse_max_stream_seconds", "sse_max_streams", "sse_max_streams_per_user",
                    "webhook_timeout_seconds", "webhook_max_attempts",
                    "webhook_retry_first_seconds", "webhook_retry_max_seconds",
                    "webhook_secret_overlap_hours")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"BATCHQ_{name.upper()} must be positive")

    @property
    def tenant_limit_rules(self) -> TenantLimits:
        """``tenant_limits`` parsed: each tenant's caps and defaults."""
        return parse_tenant_limits(self.tenant_limits)

    @property
    def embedded(self) -> bool:
        """True when running on the embedded stack (SQLite and the filesystem broker)."""
        return self.broker_url.startswith("filesystem")

    @property
    def broker_folder(self) -> Path:
        """Where the embedded filesystem broker keeps its messages."""
        return (self.data_dir / "broker").resolve()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``BATCHQ_<FIELD>`` variables; ``overrides`` win over both."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = env.get(f"BATCHQ_{field.name.upper()}")
            if raw is not None and raw != "":
                values[field.name] = _parse(field.name, str(field.type), raw)
        values.update(overrides)
        return cls(**values)


def _parse(name: str, type_name: str, raw: str) -> Any:
    try:
        if "Path" in type_name:
            return Path(raw)
        if "tuple" in type_name:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if "float" in type_name:
            if "None" in type_name and raw.lower() in ("none", "null"):
                return None
            return float(raw)
        if "int" in type_name:
            return int(raw)
    except ValueError as exc:
        message = f"BATCHQ_{name.upper()}={raw!r} is not a valid {type_name}"
        raise ConfigurationError(message) from exc
    return raw
