"""A thin client of generation.v1.GenerationService over the generated stubs."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterator, Mapping, Optional, Sequence

import grpc

# The stubs generated from proto/ live inside this package (scripts/generate-python.sh).
from syncgen._proto.generation.v1 import generation_pb2, generation_pb2_grpc

if TYPE_CHECKING:
    from syncgen.shared_watch import SharedWatch


# Shared with the asyncio client (aio.py). Ping an idle connection every 30 s and drop it after 10 s without an answer, so a Watch on a
# server that vanished without closing the connection resumes instead of hanging. Balance
# round robin over every replica the target names or resolves to, as the TypeScript client does.
CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.lb_policy_name", "round_robin"),
    # gRPC's own reconnect backoff starts at 1 s (at least 20 s per attempt by default) and
    # grows to 120 s: after an outage a client waited ~10 s, or minutes, to see the server back.
    # 5 s at most, as the shared watch's own backoff.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)


def bearer_metadata(token: Optional[str]) -> tuple:
    """The call metadata that carries ``token`` (none without one)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def open_channel(channels, address: str, credentials: Optional[grpc.ChannelCredentials]):
    """A channel with CHANNEL_OPTIONS from ``channels`` (the ``grpc`` or ``grpc.aio`` module):
    TLS with ``credentials``, plaintext when None."""
    if credentials:
        return channels.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
    return channels.insecure_channel(address, options=CHANNEL_OPTIONS)


class WatchBatches:
    """Turns Watch responses into what ``watch()`` yields: ``{key: generation}`` per batch.

    A batch split over several responses (``continued``) is joined; heartbeats are skipped,
    except the first response, which says the watch is live even when nothing differs.
    """

    def __init__(self) -> None:
        self._first = True
        self._batch: dict = {}

    def add(self, response) -> Optional[dict]:
        """The batch to yield once ``response`` completes one; None otherwise."""
        self._batch.update({change.key: change.generation for change in response.changes})
        if response.continued:
            return None
        batch, first = self._batch, self._first
        self._batch, self._first = {}, False
        return batch if batch or first else None


class SyncgenError(Exception):
    """A call failed; ``code`` is the gRPC status (grpc.StatusCode)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class SyncgenClient:
    """A client of one syncgen server.

    ``credentials``: grpc.ssl_channel_credentials(...) for TLS; plaintext when None.
    ``token``: a bearer token sent as ``authorization: Bearer <token>``.
    ``timeout``: the deadline of each call, in seconds.
    """

    def __init__(
        self,
        address: str,
        *,
        credentials: Optional[grpc.ChannelCredentials] = None,
        token: Optional[str] = None,
        timeout: float = 5.0,
    ) -> None:
        self._channel = open_channel(grpc, address, credentials)
        self._stub = generation_pb2_grpc.GenerationServiceStub(self._channel)
        self._metadata = bearer_metadata(token)
        self.timeout = timeout
        self._shared_watch_lock = threading.Lock()
        self._shared_watch: Optional["SharedWatch"] = None

    def get(self, key: str, *, peek: bool = False, timeout: Optional[float] = None) -> int:
        """The key's generation, created if absent; with ``peek``, 0 for an absent key."""
        request = generation_pb2.GetRequest(key=key, peek=peek)
        return self._call(self._stub.Get, request, timeout).generation

    def bump(self, key: str, *, timeout: Optional[float] = None) -> int:
        """Advances the key's generation and returns the new one."""
        return self._call(self._stub.Bump, generation_pb2.BumpRequest(key=key), timeout).generation

    def clear(self, key: str, *, timeout: Optional[float] = None) -> None:
        """Forgets the key: every generation handed out for it so far is stale."""
        self._call(self._stub.Clear, generation_pb2.ClearRequest(key=key), timeout)

    def watch(self, keys: Sequence[str], known: Optional[Mapping[str, int]] = None) -> Iterator[dict]:
        """Yields ``{key: generation}`` dicts: first what differs from ``known``, then changes.

        Heartbeats are skipped. Raises SyncgenError when the stream fails; resume by calling
        again with ``known`` set to what you hold.
        """
        batches = WatchBatches()
        try:
            for response in self.open_watch(keys, known):
                batch = batches.add(response)
                if batch is not None:
                    yield batch
        except grpc.RpcError as error:
            raise SyncgenError(error.code(), error.details()) from error

    def open_watch(self, keys: Sequence[str], known: Optional[Mapping[str, int]] = None):
        """The raw Watch call: iterates WatchResponse messages, and ``cancel()`` ends it.

        For code that must end a stream from another thread (the shared watch); most code
        wants ``watch()``.
        """
        request = generation_pb2.WatchRequest(keys=list(keys), known=dict(known or {}))
        return self._stub.Watch(request, metadata=self._metadata)

    @property
    def shared_watch(self) -> "SharedWatch":
        """The one Watch stream this client's synchronizers in watch mode share (made on first use)."""
        with self._shared_watch_lock:
            if self._shared_watch is None:
                from syncgen.shared_watch import SharedWatch

                self._shared_watch = SharedWatch(self)
            return self._shared_watch

    def __enter__(self) -> "SyncgenClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._shared_watch_lock:
            if self._shared_watch is not None:
                self._shared_watch.close()
        self._channel.close()

    def _call(self, method, request, timeout: Optional[float]):
        try:
            return method(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise SyncgenError(error.code(), error.details()) from error
