"""Who may do what: the table ``tests/unit/test_authorization_matrix.py`` proves and
``docs/authorization.md`` shows (``python -m tests.authorization_matrix`` prints it).

Every role is a user of tenant ``acme`` (but ``public``, with no credential, and
``scraper``, holding only ``BATCHQ_METRICS_TOKEN``). The batches: ``own`` (the
caller created it), ``same tenant`` (another acme user did), ``other tenant``
(a globex user did) and ``system-wide`` (a run celery beat started on a
schedule, creator ``system:schedule``, no tenant).
"""

from __future__ import annotations

#: Role -> the functions its user holds ("system": a system user).
ROLES: dict[str, tuple[str, ...]] = {
    "public": (),
    "scraper": (),
    "user": (),
    "backend": ("ADMIN_BACKEND_SERVICES",),
    "tenant admin": ("ADMIN_BATCHES",),
    "tenant operator": ("ADMIN_BATCHES", "ADMIN_BACKEND_SERVICES"),
    "view all": ("ADMIN_BATCHES", "ADMIN_VIEW_ALL_ORGANISATIONS"),
    "edit all": ("ADMIN_BACKEND_SERVICES", "ADMIN_BATCHES", "ADMIN_EDIT_ALL_ORGANISATIONS"),
    "system": ("system",),
}
USERS = frozenset(ROLES) - {"public", "scraper"}
TENANT_READERS = frozenset({"tenant admin", "tenant operator", "view all", "edit all", "system"})
ALL_READERS = frozenset({"view all", "edit all", "system"})
OPERATORS = ALL_READERS  # batchq.domain.permissions.is_operator
OWN_CHANGERS = frozenset({"backend", "tenant operator", "edit all", "system"})
TENANT_CHANGERS = frozenset({"tenant operator", "edit all", "system"})
EDIT_ALL = frozenset({"edit all", "system"})

TARGETS = ("own", "same tenant", "other tenant", "system-wide")
_READ = {"own": USERS, "same tenant": TENANT_READERS, "other tenant": ALL_READERS,
         "system-wide": TENANT_READERS}
_CHANGE = {"own": OWN_CHANGERS, "same tenant": TENANT_CHANGERS, "other tenant": EDIT_ALL,
           "system-wide": EDIT_ALL}

#: (endpoint, on what) -> the roles it answers (2xx); everyone else gets 401, 403 or 404.
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    **{("GET /batches/{id}", target): _READ[target] for target in TARGETS},
    **{("GET /batches (listed)", target): _READ[target] for target in TARGETS},
    **{("GET /batches/count (counted)", target): _READ[target] for target in TARGETS},
    **{("GET /batches/{id}/items", target): _READ[target] for target in TARGETS},
    **{("GET /batches/{id}/errors", target): _READ[target] for target in TARGETS},
    **{("GET /batches/{id}/errors/summary", target): _READ[target] for target in TARGETS},
    **{("GET /batches/{id}/deliveries", target): _READ[target] for target in TARGETS},
    **{("PATCH /batches/{id}", target): _CHANGE[target] for target in TARGETS},
    **{("DELETE /batches/{id}", target): _CHANGE[target] for target in TARGETS},
    ("POST /batches", "a type anyone may post to"): USERS,
    ("POST /batches", "a type with post_requires ADMIN_BACKEND_SERVICES"): OWN_CHANGERS,
    ("POST /batches", "a type with a source"): frozenset(),
    ("GET /batch-types", "the registered types"): ALL_READERS,
    ("POST /batch-types/{code}/start", "a type with a source"): EDIT_ALL,
    ("POST /batch-types/{code}/start", "a type with start_requires ADMIN_BATCHES"):
        TENANT_READERS,
    ("workQueueStatus.workers", "worker ids (host:pid) of an own batch"): OPERATORS,
    ("GET /healthz", "up or down, never the error"): frozenset(ROLES),
    ("GET /metrics", "with BATCHQ_METRICS_TOKEN set"): frozenset({"scraper"}),
}


def render() -> str:
    """The matrix as a Markdown table: one row per endpoint and target, one column per role."""
    roles = list(ROLES)
    lines = ["| endpoint | on | " + " | ".join(roles) + " |",
             "|---|---|" + "---|" * len(roles)]
    for (endpoint, target), allowed in MATRIX.items():
        cells = ["yes" if role in allowed else "-" for role in roles]
        lines.append(f"| `{endpoint}` | {target} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
