"""Slow clients cannot starve the API: the web process as the Procfile starts it."""

from __future__ import annotations

import time
from pathlib import Path

from bench.slow_clients import SlowUploads, procfile_web_command, timed_read, web_process
from tests.integration.harness import wait_until

WEB_CONCURRENCY = 2


def test_another_users_read_is_answered_while_four_slow_uploads_per_process_trickle(
    tmp_path: Path,
) -> None:
    idle = {"BATCHQ_BODY_READ_IDLE_SECONDS": "6"}
    with web_process(procfile_web_command(), WEB_CONCURRENCY, tmp_path, idle) as web, \
            SlowUploads(web, 4 * WEB_CONCURRENCY) as uploads:
        time.sleep(2)  # every upload has sent its headers and started its body
        assert not uploads.answers  # still open: their bodies have 6 s before the rate rule
        # A generous bound: the old sync workers made this read wait for more than 30 s.
        assert timed_read(web, timeout=10) < 1.0
        # The uploads are bounded too: each one is refused once its body falls behind.
        wait_until(lambda: len(uploads.answers) == 4 * WEB_CONCURRENCY, 30,
                   "the slow uploads to be refused")
    assert {answer.split()[1] for answer in uploads.answers} == {"408"}
