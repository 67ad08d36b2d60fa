"""``batchq submit`` streaming NDJSON and CSV to a real API, with real worker processes.

The client streams the file as the body of ``POST /batches`` (``application/x-ndjson``
or ``text/csv``) with the options as query parameters; the server reads it as it comes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from api import create_app
from batchq.cli import main
from batchq.service.users import NewUser, create_user
from tests.integration.harness import Cluster
from tests.live_server import serving


@pytest.fixture
def cli_env(cluster: Cluster) -> Iterator[dict[str, str]]:
    token = create_user(cluster.runtime.storage.users, NewUser("cli", is_system=True))
    with serving(create_app(runtime=cluster.runtime)) as url:
        yield {"BATCHQ_URL": url, "BATCHQ_TOKEN": token}


def batchq(env: dict[str, str], *args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=input)


def ndjson(count: int, failing: frozenset[int] = frozenset()) -> str:
    return "".join(json.dumps({"key": f"k{i}", "payload": {"fail": "bad"} if i in failing
                               else {"n": i}}) + "\n" for i in range(count))


def test_an_ndjson_file_is_streamed_and_its_query_options_apply(
    cluster: Cluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    cluster.start_worker(concurrency=2)
    path = tmp_path / "items.ndjson"
    path.write_text(ndjson(500, failing=frozenset({7, 300})))

    result = batchq(cli_env, "submit", "echo", str(path), "--page-size", "50", "--tenant",
                    "acme", "--description", "from ndjson", "--param", "note=x", "--wait",
                    "--interval", "0.2")

    assert result.exit_code == 3, result.output
    batch = cluster.get(result.stdout.strip())
    assert (batch["status"], batch["totalItems"], batch["failedItems"]) == (
        "CompletedWithErrors", 500, 2)
    assert (batch["pageSize"], batch["tenantId"], batch["description"], batch["params"]) == (
        50, "acme", "from ndjson", {"note": "x"})
    errors = batchq(cli_env, "errors", batch["id"]).output.splitlines()
    assert errors[:2] == ["#7        k7: bad", "#300      k300: bad"]


def test_ndjson_from_stdin_is_sent_chunked(cluster: Cluster, cli_env: dict[str, str]) -> None:
    cluster.start_worker(concurrency=2)

    result = batchq(cli_env, "submit", "echo", "-", "--format", "ndjson", "--wait",
                    "--interval", "0.2", input=ndjson(300).encode())

    assert result.exit_code == 0, result.output
    assert cluster.get(result.stdout.strip())["totalItems"] == 300


def test_a_csv_file_is_streamed(
    cluster: Cluster, cli_env: dict[str, str], tmp_path: Path
) -> None:
    cluster.start_worker(concurrency=2)
    path = tmp_path / "items.csv"
    path.write_text("key,payload\n" + "".join(f'c{i},"{{""n"": {i}}}"\n' for i in range(200)))

    result = batchq(cli_env, "submit", "echo", str(path), "--wait", "--interval", "0.2")

    assert result.exit_code == 0, result.output
    batch = cluster.get(result.stdout.strip())
    assert (batch["status"], batch["totalItems"]) == ("Completed", 200)
