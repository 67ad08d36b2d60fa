"""Settings: read from BATCHQ_* variables once, into a typed object."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchq.errors import ConfigurationError
from batchq.settings import Settings


def test_from_env_parses_ints_floats_and_paths(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "BATCHQ_PAGE_SIZE": "250",
        "BATCHQ_MAX_ATTEMPTS": "5",
        "BATCHQ_FAILURE_THRESHOLD": "0.5",
        "BATCHQ_LEASE_SECONDS": "2.5",
        "BATCHQ_DATA_DIR": str(tmp_path / "state"),
        "BATCHQ_HOST": "0.0.0.0",
    })
    assert settings.page_size == 250
    assert settings.max_attempts == 5
    assert settings.failure_threshold == 0.5
    assert settings.lease_seconds == 2.5
    assert settings.data_dir == tmp_path / "state"
    assert isinstance(settings.data_dir, Path)
    assert settings.host == "0.0.0.0"


@pytest.mark.parametrize("raw", ["none", "None", "NULL", "null"])
def test_a_failure_threshold_of_none_disables_it(raw: str) -> None:
    assert Settings.from_env({"BATCHQ_FAILURE_THRESHOLD": raw}).failure_threshold is None


def test_types_are_a_comma_list_whose_blanks_are_ignored() -> None:
    settings = Settings.from_env({"BATCHQ_TYPES": " shop.types ,, billing.batch,"})
    assert settings.types == ("shop.types", "billing.batch")


def test_an_empty_variable_keeps_the_default() -> None:
    assert Settings.from_env({"BATCHQ_PAGE_SIZE": ""}).page_size == Settings().page_size


def test_variables_without_the_prefix_are_ignored() -> None:
    assert Settings.from_env({"PAGE_SIZE": "7", "batchq_page_size": "7"}).page_size == 100


def test_overrides_win_over_the_environment() -> None:
    settings = Settings.from_env({"BATCHQ_PAGE_SIZE": "250"}, page_size=3)
    assert settings.page_size == 3


def test_without_configuration_batchq_runs_embedded_in_its_data_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"BATCHQ_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{(tmp_path / 'batchq.db').resolve()}"
    assert settings.broker_url == "filesystem://"
    assert settings.embedded
    assert settings.broker_folder == (tmp_path / "broker").resolve()


def test_the_defaults_are_those_of_the_design() -> None:
    settings = Settings.from_env({})
    assert settings.failure_threshold == 0.20
    assert settings.retention_days == 30
    assert settings.max_attempts == 3
    assert settings.data_dir == Path("batchq-data")
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("/batchq-data/batchq.db")
    assert (settings.max_body_mb, settings.max_line_kb, settings.max_upload_mb) == (32, 1024, 2048)


def test_postgres_and_redis_urls_switch_to_the_production_stack() -> None:
    settings = Settings.from_env({
        "BATCHQ_DATABASE_URL": "postgresql://db/batchq",
        "BATCHQ_BROKER_URL": "redis://cache:6379/0",
    })
    assert settings.database_url == "postgresql://db/batchq"
    assert settings.broker_url == "redis://cache:6379/0"
    assert not settings.embedded


@pytest.mark.parametrize(("name", "raw"), [
    ("BATCHQ_PAGE_SIZE", "lots"),
    ("BATCHQ_PAGE_SIZE", "0"),
    ("BATCHQ_JOBS_PER_SEED", "-1"),
    ("BATCHQ_MAX_ITEMS", "0"),
    ("BATCHQ_MAX_QUEUED_JOBS", "0"),
    ("BATCHQ_MAX_BODY_MB", "0"),
    ("BATCHQ_MAX_LINE_KB", "-1"),
    ("BATCHQ_MAX_UPLOAD_MB", "0"),
    ("BATCHQ_MAX_ATTEMPTS", "2.5"),
    ("BATCHQ_PORT", "http"),
    ("BATCHQ_LEASE_SECONDS", "soon"),
    ("BATCHQ_FAILURE_THRESHOLD", "half"),
    ("BATCHQ_FAILURE_THRESHOLD", "0"),
    ("BATCHQ_FAILURE_THRESHOLD", "1.5"),
    ("BATCHQ_FAILURE_THRESHOLD", "nan"),
])
def test_a_bad_value_raises_a_configuration_error_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({name: raw})
    assert name in raised.value.message
