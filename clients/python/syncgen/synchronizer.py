"""djblets' GenerationSynchronizer, with djblets' method names, on a syncgen server.

Matches djblets behaviour for behaviour: construction fetches or creates the generation;
``is_expired()`` reads without creating and is true when the shared value differs or is
absent; ``refresh()`` adopts; ``clear()`` deletes without touching ``sync_gen``;
``mark_updated()`` bumps and adopts. Service errors are logged (at most once per key per
interval) and never raised; ``is_expired()`` then answers True (fail safe) after one short
attempt.

With ``watch=True`` the synchronizer follows its key through the client's one shared Watch
stream (shared_watch.py): while the stream is live, ``is_expired()`` answers from memory,
without a call; while it is down, it asks the server as without watch mode. ``close()``
stops following.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional, Sequence, Union

from syncgen.cache_key import make_cache_key
from syncgen.client import SyncgenClient

logger = logging.getLogger("syncgen.synchronizer")

_log_lock = threading.Lock()
_last_logged: dict = {}


def _warn(cache_key: str, message: str, interval: float) -> None:
    """Logs at most once per key per ``interval`` seconds."""
    now = time.monotonic()
    with _log_lock:
        last = _last_logged.get(cache_key)
        if last is not None and now - last < interval:
            return
        _last_logged[cache_key] = now
    logger.warning(message)


class GenerationSynchronizer:
    """Knows whether this process's copy of the state behind one cache key is current."""

    cache_key: str
    sync_gen: Optional[int]

    def __init__(
        self,
        client: SyncgenClient,
        cache_key: Union[str, Sequence[str]],
        *,
        normalize_cache_key: bool = True,
        key_prefix: Union[None, str, Sequence[str]] = None,
        hmac_key: Optional[Union[str, bytes]] = None,
        check_timeout: float = 0.5,
        log_interval: float = 60.0,
        watch: bool = False,
    ) -> None:
        if normalize_cache_key:
            cache_key = make_cache_key(cache_key, prefix=key_prefix, hmac_key=hmac_key)
        elif not isinstance(cache_key, str):
            raise TypeError("cache_key must be a string when normalize_cache_key is False")
        self.cache_key = cache_key
        self.sync_gen = None
        self._client = client
        self._check_timeout = check_timeout
        self._log_interval = log_interval
        self._follower = None
        self.refresh()
        # Followed once read, with what was read as the stream's known generation.
        if watch:
            self._follower = client.shared_watch.follow(self.cache_key, self.sync_gen)

    def is_expired(self) -> bool:
        """Whether the shared generation differs from ``sync_gen`` or is absent."""
        followed = self._follower.current() if self._follower is not None else None
        if followed is not None:
            return followed == 0 or followed != self.sync_gen
        try:
            current = self._client.get(self.cache_key, peek=True, timeout=self._check_timeout)
        except Exception as error:  # noqa: BLE001 - fail safe on any error, as djblets does
            self._warn("checking", error)
            return True
        return current == 0 or current != self.sync_gen

    def refresh(self) -> None:
        """Adopts the shared generation, creating one if the key is absent."""
        try:
            self.sync_gen = self._client.get(self.cache_key)
            self._observe()
        except Exception as error:  # noqa: BLE001
            self._warn("refreshing", error)

    def clear(self) -> None:
        """Deletes the shared generation; everyone now reads as expired."""
        try:
            self._client.clear(self.cache_key)
        except Exception as error:  # noqa: BLE001
            self._warn("clearing", error)

    def mark_updated(self) -> None:
        """Bumps the shared generation and adopts the result."""
        try:
            self.sync_gen = self._client.bump(self.cache_key)
            self._observe()
        except Exception as error:  # noqa: BLE001
            self._warn("marking as updated", error)

    def close(self) -> None:
        """Stops following the key (watch mode); checks then ask the server."""
        if self._follower is not None:
            self._follower.close()

    def _observe(self) -> None:
        # What the server just answered may be newer than what the stream has said so far.
        if self._follower is not None:
            self._follower.observe(self.sync_gen)

    def _warn(self, action: str, error: Exception) -> None:
        _warn(
            self.cache_key,
            f'syncgen: {action} generation of cache key "{self.cache_key}" failed: {error}',
            self._log_interval,
        )
