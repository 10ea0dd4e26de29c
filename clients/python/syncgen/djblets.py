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

from syncgen import synchronizer
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


class GenerationSynchronizer(synchronizer.GenerationSynchronizer):
    """djblets.cache.synchronizer.GenerationSynchronizer, its constructor and behaviour exactly.

    syncgen's synchronizer (syncgen.synchronizer) with djblets' constructor, the client and
    key prefix found from settings, and djblets' logging: every failure at ERROR with its
    traceback, not rate-limited.
    """

    def __init__(self, cache_key: Union[str, Sequence[str]], normalize_cache_key: bool = True) -> None:
        if not normalize_cache_key and not isinstance(cache_key, str):
            raise ValueError(
                "cache_key must be a string when normalize_cache_key is False, not %s" % type(cache_key).__name__
            )
        client = shared_client()
        super().__init__(
            client,
            cache_key,
            normalize_cache_key=normalize_cache_key,
            key_prefix=site_prefix(),
            # djblets checks with its cache's own timeout, not a shorter one.
            check_timeout=client.timeout,
            watch=_watching(),
        )
        if self.sync_gen is None:
            # djblets: a first read that failed starts from the local clock. (The shared watch,
            # if any, was joined knowing nothing, so its first answer is the server's value.)
            self.sync_gen = int(time.time())

    def _warn(self, action: str, error: Exception) -> None:
        # Called inside the failed call's except block, so the traceback is logged too.
        logger.exception('syncgen: %s generation of cache key "%s" failed: %s', action, self.cache_key, error)
