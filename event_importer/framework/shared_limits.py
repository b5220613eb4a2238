"""A destination's limits held in Redis, so that they bound every worker process together.

Two limits, the same two a client keeps per process without Redis: at most `max_in_flight` requests
in flight, and at most `rate` requests per second. One Lua script takes both at once, on Redis's
clock (workers on several hosts need not agree on the time):

- **In flight**: a sorted set of slots, each a token with its lease's expiry. A request takes a slot
  before it leaves and gives it back when its answer has arrived. A process killed mid-request never
  gives its slots back; they expire with their lease, which outlasts any request a live process can
  make (twice the request timeout, plus the longest wait for a rate slot, plus a margin).
- **Rate**: the next free send time. Each request reserves the next slot, `1 / rate` after the one
  before, and waits for it: requests leave evenly spaced, with no burst. One that would leave more
  than `LATE_S` (5 ms) after its slot, because its process was busy, reserves a new slot instead, so
  delays cannot bunch requests up: any one second holds at most `rate x 1.005 + 1` departures.

A request asks once; when every slot is taken it asks again after a short pause (1-5 ms), only one
waiting request per process at a time. Redis unreachable: `SharedLimitError`, raised before the request is sent.
"""

import asyncio
import hashlib
import itertools
import logging
import math
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import SecretStr

from event_importer.errors import SharedLimitError
from event_importer.ledger import current_owner

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

logger = logging.getLogger(__name__)

REDIS_URL_ENV = "EVENT_IMPORTER_REDIS_URL"
POLL_FIRST_S = 0.001
POLL_MAX_S = 0.005
# The latest a request may leave after its rate slot: any second then holds at most rate x 1.005 + 1.
LATE_S = 0.005
LEASE_MARGIN_S = 5.0
# A request to Redis that takes longer than this means Redis is not there.
REDIS_TIMEOUT_S = 5.0

# KEYS: the in-flight slots (token -> lease expiry, µs), the next free send time (µs).
# ARGV: token, max in flight, lease µs, µs between two requests (0: no rate limit).
# Returns -1 when every slot is taken, else the µs to wait before sending.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return -1
end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], string.format('%.0f', now + lease), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(lease / 1000))
local interval = tonumber(ARGV[4])
if interval <= 0 then
  return 0
end
local slot = math.max(now, tonumber(redis.call('GET', KEYS[2]) or '0'))
local next_free = slot + interval
redis.call('SET', KEYS[2], string.format('%.0f', next_free), 'PX', math.ceil((next_free - now) / 1000) + 1000)
return slot - now
"""


class SharedLimits:
    """The in-flight and rate limits of one destination, shared through Redis by every process.

    Use `await open()` once before sending (it checks that Redis answers), then around each request
    `token = await acquire()` and `await release(token)`.
    """

    def __init__(
        self,
        url: SecretStr,
        name: str,
        destination: str,
        *,
        max_in_flight: int,
        rate: float | None,
        request_timeout: float,
    ) -> None:
        """
        Args:
            url: the Redis URL (it may hold a password: never shown).
            name: the integration's name, for messages.
            destination: what identifies the destination (its base URL); processes sending to the same
                integration and destination share its limits.
            max_in_flight: requests in flight across all processes.
            rate: requests per second across all processes; None: no rate limit.
            request_timeout: the client's timeout for one request, which the lease of a slot outlasts.
        """
        self.name = name
        self.max_in_flight = max_in_flight
        self.interval_us = round(1_000_000 / rate) if rate else 0
        longest_wait = max_in_flight / rate if rate else 0.0
        self.lease_us = math.ceil((2 * request_timeout + longest_wait + LEASE_MARGIN_S) * 1_000_000)
        # The hash tag keeps both keys on one node of a Redis cluster, as a script needs.
        tag = f"{{event-importer:{name}:{hashlib.sha256(destination.encode()).hexdigest()[:16]}}}"
        self.keys = [f"{tag}:in-flight", f"{tag}:next-send"]
        self._url = url
        self._owner = current_owner()
        self._ids = itertools.count()
        self._door = asyncio.Lock()
        self._redis: Redis | None = None
        self._script: AsyncScript | None = None

    def __repr__(self) -> str:
        return f"SharedLimits({self.name!r}, max_in_flight={self.max_in_flight})"

    async def open(self) -> None:
        """Connect and check that Redis answers.

        Raises:
            SharedLimitError: Redis cannot be reached.
        """
        import redis.asyncio as redis

        if self._redis is None:
            # Room for every request of this process to ask and to give back at once (a blocking pool
            # waits for a connection rather than failing when more ask).
            pool = redis.BlockingConnectionPool.from_url(
                self._url.get_secret_value(),
                max_connections=2 * self.max_in_flight + 2,
                timeout=REDIS_TIMEOUT_S,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
            client = redis.Redis.from_pool(pool)
            self._redis = client
            self._script = client.register_script(_ACQUIRE)
        try:
            await self._redis.ping()
        except Exception as exc:  # noqa: BLE001 - whatever stops Redis from answering stops the run
            await self.aclose()
            raise self._error(exc) from None

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = self._script = None

    async def acquire(self) -> str:
        """Wait for an in-flight slot and the next rate slot; returns the slot's token.

        A request that wakes more than `LATE_S` after its rate slot (a busy process) does not go: it
        gives the slot up and reserves another, so requests never bunch up behind a delay.

        Raises:
            SharedLimitError: Redis cannot be reached (nothing may be sent).
        """
        if self._script is None:
            await self.open()
        script = self._script
        assert script is not None
        loop = asyncio.get_running_loop()
        args = [self.max_in_flight, self.lease_us, self.interval_us]

        async def ask(token: str) -> tuple[float, int]:
            # The script runs after `asked`, so the rate slot is no earlier than `asked + wait`.
            asked = loop.time()
            try:
                return asked, int(await script(keys=self.keys, args=[token, *args]))
            except Exception as exc:  # noqa: BLE001 - see open()
                raise self._error(exc) from None

        while True:
            token = f"{self._owner}:{next(self._ids)}"
            asked, wait_us = await ask(token)
            if wait_us < 0:
                # Every slot is taken: one waiting request per process asks again until one frees.
                async with self._door:
                    pause = POLL_FIRST_S
                    while wait_us < 0:
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, POLL_MAX_S)
                        asked, wait_us = await ask(token)
            if not self.interval_us:
                return token
            slot = asked + wait_us / 1_000_000
            if slot > loop.time():
                await asyncio.sleep(slot - loop.time())
            if loop.time() <= slot + LATE_S:
                return token
            await self.release(token)

    async def release(self, token: str) -> None:
        """Give the slot back; if Redis is gone meanwhile, its lease frees it later."""
        if self._redis is None:
            return
        try:
            await self._redis.zrem(self.keys[0], token)
        except Exception as exc:  # noqa: BLE001 - the lease expires; the next acquire reports the outage
            logger.warning("%s: could not give a shared in-flight slot back (%s); its lease frees it", self.name, exc)

    def _error(self, exc: BaseException) -> SharedLimitError:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        password = urlsplit(self._url.get_secret_value()).password
        if password:
            detail = detail.replace(password, "***")
        return SharedLimitError(
            f"{self.name}: the store of the shared rate limit ({REDIS_URL_ENV}) is unreachable ({detail}); "
            "nothing more is sent, so that no worker exceeds the destination's limits"
        )
