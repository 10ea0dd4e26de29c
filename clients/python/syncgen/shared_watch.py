"""One Watch stream per client, shared by all its synchronizers in watch mode.

While the stream is live, a synchronizer answers ``is_expired()`` from what it reported: no
call to the server. A key that joins or leaves restarts the stream with the new key set and
``known`` set to what is already held, so the server answers only what differs. While the
stream is down (reconnecting with backoff, or restarting), ``current()`` knows nothing and
synchronizers ask the server, as without watch mode.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import TYPE_CHECKING, Dict, FrozenSet, Optional

import grpc

if TYPE_CHECKING:
    from syncgen.client import SyncgenClient

logger = logging.getLogger(__name__)

# Statuses a stream cannot resume from at once: retrying now would fail the same way. It is
# still tried again after a longer pause (_REFUSED_SECONDS), in case what refused it changes
# (a token granted the key, say).
_FINAL = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.UNIMPLEMENTED,
}

_BACKOFF_SECONDS = (0.1, 5.0)  # first and largest pause between reconnects, with jitter
_REFUSED_SECONDS = (1.0, 60.0)  # the same after a refusal (_FINAL)


class Follower:
    """One key followed through a SharedWatch, for one synchronizer."""

    def __init__(self, watch: "SharedWatch", key: str, generation: Optional[int]) -> None:
        self._watch: Optional[SharedWatch] = watch
        self._key = key
        watch.join(key, generation)

    def current(self) -> Optional[int]:
        """The key's generation as the live stream reported it; None while no live stream covers it."""
        return self._watch.current(self._key) if self._watch is not None else None

    def observe(self, generation: Optional[int]) -> None:
        """Records a generation the synchronizer just got from the server."""
        if self._watch is not None and generation is not None:
            self._watch.observe(self._key, generation)

    def close(self) -> None:
        """Stops following (once)."""
        if self._watch is not None:
            self._watch.leave(self._key)
            self._watch = None


class SharedWatch:
    """The shared Watch of one SyncgenClient."""

    def __init__(self, client: "SyncgenClient") -> None:
        self._client = client
        self._lock = threading.Lock()
        # Keys watched, with how many synchronizers watch each, and the latest generation known.
        self._users: Dict[str, int] = {}
        self._generations: Dict[str, Optional[int]] = {}
        # The keys of the stream that is live now (empty while none is).
        self._live: FrozenSet[str] = frozenset()
        # Each restart makes a new run; a run that is no longer current stops.
        self._run = 0
        self._call = None
        self._closed = False

    def follow(self, key: str, generation: Optional[int] = None) -> Follower:
        """Follows ``key`` for one synchronizer, until the Follower is closed.

        ``generation``: what the synchronizer just read, sent as the stream's ``known``, so
        the server's first answer cannot be older than it.
        """
        return Follower(self, key, generation)

    def join(self, key: str, generation: Optional[int] = None) -> None:
        """Watches ``key`` (once for any number of joins); ``generation`` as in follow()."""
        with self._lock:
            self._users[key] = self._users.get(key, 0) + 1
            if generation is not None:
                self._record(key, generation)
            if self._users[key] > 1:
                return
            self._generations.setdefault(key, None)
        self._restart()

    def leave(self, key: str) -> None:
        """Undoes one join; the key is no longer watched once every joiner left."""
        with self._lock:
            left = self._users.get(key, 0) - 1
            if left > 0:
                self._users[key] = left
                return
            self._users.pop(key, None)
            self._generations.pop(key, None)
        self._restart()

    def current(self, key: str) -> Optional[int]:
        """The key's generation as the live stream reported it (0: absent); None when no live stream covers it."""
        with self._lock:
            return self._generations.get(key) if key in self._live else None

    def observe(self, key: str, generation: int) -> None:
        """Records a generation just read from the server (Get, Bump), newer than what the stream said so far."""
        with self._lock:
            if key in self._generations:
                self._record(key, generation)

    def _record(self, key: str, generation: int) -> None:
        """Keeps ``generation`` unless what is held is newer (called with the lock held).

        A key's live generations only grow; 0 (absent) supersedes any, as a Clear does. A
        report older than what a Get or Bump just answered is the stream catching up.
        """
        held = self._generations.get(key)
        if held is None or held == 0 or generation == 0 or generation > held:
            self._generations[key] = generation

    def close(self) -> None:
        """Ends the stream; nothing is watched any more."""
        with self._lock:
            self._closed = True
            self._users.clear()
            self._generations.clear()
            self._live = frozenset()
            self._run += 1
            call, self._call = self._call, None
        if call is not None:
            call.cancel()

    def _restart(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._run += 1
            run = self._run
            self._live = frozenset()
            call, self._call = self._call, None
            keys = frozenset(self._users)
        if call is not None:
            call.cancel()
        if keys:
            threading.Thread(target=self._serve, args=(run, keys), name="syncgen-watch", daemon=True).start()

    def _serve(self, run: int, keys: FrozenSet[str]) -> None:
        """Keeps one stream of ``keys`` up until a newer run replaces it, reconnecting with backoff."""
        pause = _BACKOFF_SECONDS[0]
        refused = _REFUSED_SECONDS[0]
        while True:
            with self._lock:
                if run != self._run:
                    return
                known = {key: gen for key, gen in self._generations.items() if key in keys and gen is not None}
                call = self._client.open_watch(sorted(keys), known)
                self._call = call
            try:
                for response in call:
                    with self._lock:
                        if run != self._run:
                            return
                        for change in response.changes:
                            if change.key in self._generations:
                                self._record(change.key, change.generation)
                        if not response.continued:
                            self._live = keys
                            pause = _BACKOFF_SECONDS[0]
                            refused = _REFUSED_SECONDS[0]
            except grpc.RpcError as error:
                with self._lock:
                    if run != self._run:
                        return
                    self._live = frozenset()
                if error.code() in _FINAL:
                    logger.error(
                        "syncgen: the shared watch of %d keys was refused (%s), retrying in %.0f s: %s",
                        len(keys),
                        error.code().name,
                        refused,
                        error.details(),
                    )
                    threading.Event().wait(refused * (0.5 + random.random() / 2))
                    refused = min(refused * 2, _REFUSED_SECONDS[1])
                    continue
            with self._lock:
                self._live = frozenset()
            # The server ended the stream (shutdown) or it broke: reconnect after a pause.
            threading.Event().wait(pause * (0.5 + random.random()))
            pause = min(pause * 2, _BACKOFF_SECONDS[1])
