"""The asyncio client: SyncgenClient's calls, awaited, over grpc.aio.

    from syncgen.aio import AsyncSyncgenClient

    async with AsyncSyncgenClient("127.0.0.1:50051") as client:
        generation = await client.bump("users:42")
        async for changes in client.watch(["users:42"], known={"users:42": generation}):
            print(changes)    # {} once live, then {key: generation} per change
"""

from __future__ import annotations

from typing import AsyncIterator, Mapping, Optional, Sequence

import grpc
import grpc.aio

from syncgen._proto.generation.v1 import generation_pb2, generation_pb2_grpc
from syncgen.client import SyncgenError, WatchBatches, bearer_metadata, open_channel


class AsyncSyncgenClient:
    """A client of one syncgen server for asyncio code; the options are SyncgenClient's."""

    def __init__(
        self,
        address: str,
        *,
        credentials: Optional[grpc.ChannelCredentials] = None,
        token: Optional[str] = None,
        timeout: float = 5.0,
    ) -> None:
        self._channel = open_channel(grpc.aio, address, credentials)
        self._stub = generation_pb2_grpc.GenerationServiceStub(self._channel)
        self._metadata = bearer_metadata(token)
        self.timeout = timeout

    async def get(self, key: str, *, peek: bool = False, timeout: Optional[float] = None) -> int:
        """The key's generation, created if absent; with ``peek``, 0 for an absent key."""
        request = generation_pb2.GetRequest(key=key, peek=peek)
        return (await self._call(self._stub.Get, request, timeout)).generation

    async def bump(self, key: str, *, timeout: Optional[float] = None) -> int:
        """Advances the key's generation (by exactly 1 while it exists) and returns the new one."""
        return (await self._call(self._stub.Bump, generation_pb2.BumpRequest(key=key), timeout)).generation

    async def clear(self, key: str, *, timeout: Optional[float] = None) -> None:
        """Forgets the key: every generation handed out for it so far is stale."""
        await self._call(self._stub.Clear, generation_pb2.ClearRequest(key=key), timeout)

    async def watch(self, keys: Sequence[str], known: Optional[Mapping[str, int]] = None) -> AsyncIterator[dict]:
        """Yields ``{key: generation}`` dicts as SyncgenClient.watch does; raises SyncgenError when the stream fails."""
        request = generation_pb2.WatchRequest(keys=list(keys), known=dict(known or {}))
        call = self._stub.Watch(request, metadata=self._metadata)
        batches = WatchBatches()
        try:
            async for response in call:
                batch = batches.add(response)
                if batch is not None:
                    yield batch
        except grpc.aio.AioRpcError as error:
            raise SyncgenError(error.code(), error.details() or "") from error
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncSyncgenClient":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _call(self, method, request, timeout: Optional[float]):
        try:
            return await method(request, timeout=timeout or self.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as error:
            raise SyncgenError(error.code(), error.details() or "") from error
