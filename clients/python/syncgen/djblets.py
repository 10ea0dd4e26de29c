"""djblets' GenerationSynchronizer on a syncgen server: a Django project switches by one import.

    # from djblets.cache.synchronizer import GenerationSynchronizer
    from syncgen.djblets import GenerationSynchronizer

    sync = GenerationSynchronizer("my-cache-key")
    if sync.is_expired():
        reload()
        sync.refresh()

The server comes from Django's settings, else the environment: ``SYNCGEN_SERVER``
(HOST:PORT, default 127.0.0.1:50051), ``SYNCGEN_TOKEN`` (a bearer token, if the server asks
for one), ``SYNCGEN_TIMEOUT`` (seconds per call, default 5) and ``SYNCGEN_WATCH`` (true: each
synchronizer follows its key through the client's one shared Watch stream, and
``is_expired()`` answers from memory while the stream is live). One client per process
serves every synchronizer. Keys are built as djblets builds them, with the current site's
domain (and ``settings.SITE_ROOT`` when set) in front when ``django.contrib.sites`` is in use.

It behaves as djblets' own tests assert: ``mark_updated()`` gives exactly the previous
generation + 1 (the server's Bump does); every failure is logged at ERROR with its traceback
and never raised; when the first read fails, ``sync_gen`` is the local ``int(time.time())``;
with ``normalize_cache_key=False`` a key that is not a string raises ValueError.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import List, Optional, Sequence, Tuple, Union

from syncgen.cache_key import make_cache_key
from syncgen.client import SyncgenClient

logger = logging.getLogger(__name__)

_DEFAULT_SERVER = "127.0.0.1:50051"

_client_lock = threading.Lock()
_client: Optional[SyncgenClient] = None
_client_config: Optional[Tuple[str, Optional[str], float]] = None


def _setting(name: str) -> Optional[str]:
    """A Django setting when Django is configured and has it; else the environment variable."""
    try:
        from django.conf import settings

        if settings.configured and hasattr(settings, name):
            value = getattr(settings, name)
            return None if value is None else str(value)
    except ImportError:
        pass
    return os.environ.get(name)


def shared_client() -> SyncgenClient:
    """The process's client, as the settings name it (made again if they change)."""
    global _client, _client_config
    config = (
        _setting("SYNCGEN_SERVER") or _DEFAULT_SERVER,
        _setting("SYNCGEN_TOKEN") or None,
        float(_setting("SYNCGEN_TIMEOUT") or 5.0),
    )
    with _client_lock:
        if _client is None or _client_config != config:
            if _client is not None:
                _client.close()
            server, token, timeout = config
            _client = SyncgenClient(server, token=token, timeout=timeout)
            _client_config = config
        return _client


def _watching() -> bool:
    """Whether SYNCGEN_WATCH asks for watch mode (a Django boolean, or "1"/"true" in the environment)."""
    return (_setting("SYNCGEN_WATCH") or "").strip().lower() in ("1", "true", "yes", "on")


def site_prefix() -> List[str]:
    """djblets' key prefix: the current site's domain, and SITE_ROOT when set; none without sites."""
    try:
        from django.conf import settings
        from django.contrib.sites.models import Site

        domain = Site.objects.get_current().domain
        site_root = getattr(settings, "SITE_ROOT", None)
    except Exception:  # noqa: BLE001 - as djblets: no Site app (or no database), no prefix
        return []
    return [domain, site_root] if site_root else [domain]


class GenerationSynchronizer:
    """djblets.cache.synchronizer.GenerationSynchronizer, its constructor and behaviour exactly."""

    cache_key: str
    sync_gen: Optional[int]

    def __init__(self, cache_key: Union[str, Sequence[str]], normalize_cache_key: bool = True) -> None:
        if normalize_cache_key:
            self.cache_key = make_cache_key(cache_key, prefix=site_prefix())
        elif isinstance(cache_key, str):
            self.cache_key = cache_key
        else:
            raise ValueError(
                "cache_key must be a string when normalize_cache_key is False, not %s" % type(cache_key).__name__
            )
        self.sync_gen = None
        self._client = shared_client()
        self._follower = None
        try:
            self.sync_gen = self._client.get(self.cache_key)
            read = self.sync_gen
        except Exception:  # noqa: BLE001 - logged, never raised, as djblets does
            logger.exception('Unable to fetch or create the generation of cache key "%s"', self.cache_key)
            self.sync_gen = int(time.time())
            read = None
        # Followed once read, with what was read as the stream's known generation.
        if _watching():
            self._follower = self._client.shared_watch.follow(self.cache_key, read)

    def is_expired(self) -> bool:
        """Whether the shared generation differs from ``sync_gen`` or is absent; True on errors."""
        followed = self._follower.current() if self._follower is not None else None
        if followed is not None:
            return followed == 0 or followed != self.sync_gen
        try:
            current = self._client.get(self.cache_key, peek=True)
        except Exception:  # noqa: BLE001
            logger.exception('Unable to check the generation of cache key "%s"', self.cache_key)
            return True
        return current == 0 or current != self.sync_gen

    def refresh(self) -> None:
        """Adopts the shared generation, creating one if the key is absent."""
        try:
            self.sync_gen = self._client.get(self.cache_key)
            self._observe()
        except Exception:  # noqa: BLE001
            logger.exception('Unable to refresh the generation of cache key "%s"', self.cache_key)

    def clear(self) -> None:
        """Deletes the shared generation; every instance reads as expired until one refreshes."""
        try:
            self._client.clear(self.cache_key)
        except Exception:  # noqa: BLE001
            logger.exception('Unable to clear the generation of cache key "%s"', self.cache_key)

    def mark_updated(self) -> None:
        """Advances the shared generation (by exactly 1 while the key exists) and adopts it."""
        try:
            self.sync_gen = self._client.bump(self.cache_key)
            self._observe()
        except Exception:  # noqa: BLE001
            logger.exception('Unable to mark cache key "%s" as updated', self.cache_key)

    def close(self) -> None:
        """Stops following the key (with SYNCGEN_WATCH); not in djblets, which has nothing to stop."""
        if self._follower is not None:
            self._follower.close()

    def _observe(self) -> None:
        # What the server just answered may be newer than what the stream has said so far.
        if self._follower is not None:
            self._follower.observe(self.sync_gen)
