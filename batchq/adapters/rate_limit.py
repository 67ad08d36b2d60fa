"""A rate limit shared by every worker process: calls under one key are spaced 1/rate apart.

Each caller atomically reserves the next free time slot of its key and sleeps
until that slot (a token bucket that holds one token), so N calls take
(N - 1) / rate seconds whatever the number of processes making them. The slot
lives in Redis when the broker is Redis (every machine shares it), else in a
small file locked with ``fcntl`` in the data folder (one machine: the embedded
stack).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import redis

from batchq.settings import Settings

Clock = Callable[[], float]
Sleep = Callable[[float], None]

#: Redis keys of the limiter: the prefix, then the caller's key (e.g. ``http:<batch id>``).
REDIS_PREFIX = "batchq:rate:"
#: A key's slot is kept this long after its last reservation is due.
IDLE_SECONDS = 60
#: State files unused for this long belong to finished batches and are removed.
STALE_FILE_SECONDS = 86_400

# KEYS[1]: the slot key; ARGV[1]: the interval in microseconds. Returns the wait in
# microseconds. Redis's own clock, so machines with skewed clocks share one timeline.
_RESERVE_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local start = tonumber(redis.call('GET', KEYS[1]) or now)
if start < now then start = now end
local next_free = start + tonumber(ARGV[1])
local ttl_ms = math.ceil((next_free - now) / 1000) + tonumber(ARGV[2]) * 1000
redis.call('SET', KEYS[1], string.format('%d', next_free), 'PX', ttl_ms)
return start - now
"""


# The same, but reserving only a slot that starts within ARGV[3] microseconds; otherwise
# nothing changes and the wait (negated) is returned.
_RESERVE_WITHIN_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local start = tonumber(redis.call('GET', KEYS[1]) or now)
if start < now then start = now end
if start - now > tonumber(ARGV[3]) then return now - start end
local next_free = start + tonumber(ARGV[1])
local ttl_ms = math.ceil((next_free - now) / 1000) + tonumber(ARGV[2]) * 1000
redis.call('SET', KEYS[1], string.format('%d', next_free), 'PX', ttl_ms)
return start - now
"""


def reserve_slot(next_free: float, now: float, interval: float) -> tuple[float, float]:
    """(how long to wait from ``now``, the key's new next free slot) for one call."""
    start = max(next_free, now)
    return start - now, start + interval


def reserve_slot_within(next_free: float, now: float, interval: float,
                        max_wait: float) -> tuple[float | None, float]:
    """``reserve_slot``, but only for a slot that starts within ``max_wait``: else
    (None, ``next_free`` unchanged)."""
    if max(next_free, now) - now > max_wait:
        return None, next_free
    return reserve_slot(next_free, now, interval)


class RateLimiter(ABC):
    """Spaces the calls made under one key ``1 / rate`` seconds apart, across processes."""

    def __init__(self, sleep: Sleep = time.sleep) -> None:
        self._sleep = sleep

    def acquire(self, key: str, rate: float) -> float:
        """Block until the caller may make its next call under ``key``; returns the wait."""
        if rate <= 0:
            raise ValueError(f"a rate limit must be positive, not {rate!r}")
        wait = self.reserve(key, 1.0 / rate)
        if wait > 0:
            self._sleep(wait)
        return wait

    @abstractmethod
    def reserve(self, key: str, interval: float) -> float:
        """Take the next free slot of ``key`` and return the seconds until it starts."""

    @abstractmethod
    def reserve_within(self, key: str, interval: float, max_wait: float) -> float | None:
        """Take the next free slot of ``key`` if it starts within ``max_wait`` seconds and
        return the seconds until then; None (nothing taken) if it starts later.

        A caller that may change its rate meanwhile (a rethrottled batch) waits
        at most ``max_wait`` before it asks again with the new interval.
        """


class RedisRateLimiter(RateLimiter):
    """Slots in Redis, reserved by one Lua script: shared by every machine using that Redis."""

    def __init__(self, client: redis.Redis[bytes], sleep: Sleep = time.sleep) -> None:
        super().__init__(sleep)
        self._reserve = client.register_script(_RESERVE_LUA)
        self._reserve_within = client.register_script(_RESERVE_WITHIN_LUA)

    @classmethod
    def from_url(cls, url: str, sleep: Sleep = time.sleep) -> RedisRateLimiter:
        """A limiter on the Redis at ``url``; connects on its first reservation."""
        return cls(redis.Redis.from_url(url), sleep)

    def reserve(self, key: str, interval: float) -> float:
        micros = self._reserve(keys=[REDIS_PREFIX + key],
                               args=[round(interval * 1_000_000), IDLE_SECONDS])
        return int(micros) / 1_000_000

    def reserve_within(self, key: str, interval: float, max_wait: float) -> float | None:
        micros = int(self._reserve_within(
            keys=[REDIS_PREFIX + key],
            args=[round(interval * 1_000_000), IDLE_SECONDS, round(max_wait * 1_000_000)]))
        return None if micros < 0 else micros / 1_000_000


class FileRateLimiter(RateLimiter):
    """Slots in one small file per key, under an exclusive ``fcntl`` lock: one machine only."""

    def __init__(self, folder: Path, clock: Clock = time.time, sleep: Sleep = time.sleep) -> None:
        super().__init__(sleep)
        self.folder = folder
        self._clock = clock
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_stale_files(self.folder, clock() - STALE_FILE_SECONDS)

    def reserve(self, key: str, interval: float) -> float:
        wait = self._reserve_in_file(key, interval, None)
        assert wait is not None
        return wait

    def reserve_within(self, key: str, interval: float, max_wait: float) -> float | None:
        return self._reserve_in_file(key, interval, max_wait)

    def _reserve_in_file(self, key: str, interval: float, max_wait: float | None) -> float | None:
        fd = os.open(self.path_of(key), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            next_free = _parse_slot(os.read(fd, 64))
            if max_wait is None:
                wait: float | None
                wait, next_free = reserve_slot(next_free, self._clock(), interval)
            else:
                wait, next_free = reserve_slot_within(next_free, self._clock(), interval,
                                                      max_wait)
            if wait is not None:
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, repr(next_free).encode())
            return wait
        finally:
            os.close(fd)  # also releases the lock

    def path_of(self, key: str) -> Path:
        """The state file of ``key``; characters unsafe in a file name become ``_``."""
        return self.folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", key) + ".slot")


def _parse_slot(raw: bytes) -> float:
    try:
        return float(raw.decode())
    except ValueError:
        return 0.0  # a new (empty) file: the first call goes at once


def remove_stale_files(folder: Path, unused_since: float) -> None:
    """Delete the state files last written before ``unused_since`` (their batches are over)."""
    for path in folder.glob("*.slot"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < unused_since:
                path.unlink()


def limiter_for(settings: Settings) -> RateLimiter:
    """Redis when the broker is Redis, else a locked file in the data folder."""
    if settings.broker_url.startswith(("redis://", "rediss://")):
        return RedisRateLimiter.from_url(settings.broker_url)
    return FileRateLimiter(settings.data_dir.resolve() / "rate-limits")


class ProcessLimiter:
    """This process's limiter, built on first use (after a worker pool forked).

    Handlers get no settings, so the limiter reads ``Settings.from_env()`` - the
    settings a worker process is started with - unless ``configure`` gave others.
    """

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._built: tuple[int, RateLimiter] | None = None

    def configure(self, settings: Settings | None) -> None:
        """Build the limiter from ``settings`` (None: from the environment again)."""
        self._settings = settings
        self._built = None

    def get(self) -> RateLimiter:
        """The limiter; a forked child builds its own rather than share a connection."""
        pid = os.getpid()
        if self._built is None or self._built[0] != pid:
            settings = self._settings or Settings.from_env()
            self._built = (pid, limiter_for(settings))
        return self._built[1]


#: The limiter shared by the batch types of this process.
shared_limiter = ProcessLimiter()
