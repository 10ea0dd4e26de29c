"""The asyncio client against a real syncgen server (SYNCGEN_TEST_SERVER=HOST:PORT)."""

import asyncio
import os
import sys
import unittest
import uuid

import grpc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from syncgen import SyncgenClient, SyncgenError  # noqa: E402
from syncgen.aio import AsyncSyncgenClient  # noqa: E402

SERVER = os.environ.get("SYNCGEN_TEST_SERVER", "")


@unittest.skipUnless(SERVER, "SYNCGEN_TEST_SERVER is not set")
class AsyncSyncgenClientTests(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.client = AsyncSyncgenClient(SERVER)
        self.other = SyncgenClient(SERVER)
        self.key = "test-aio-" + uuid.uuid4().hex

    async def asyncTearDown(self) -> None:
        await self.client.close()
        self.other.close()

    async def test_get_bump_clear(self) -> None:
        self.assertEqual(await self.client.get(self.key, peek=True), 0)
        created = await self.client.get(self.key)
        self.assertEqual(await self.client.bump(self.key), created + 1)
        await self.client.clear(self.key)
        self.assertEqual(self.other.get(self.key, peek=True), 0)

    async def test_watch_reports_changes(self) -> None:
        generation = await self.client.get(self.key)
        stream = self.client.watch([self.key], known={self.key: generation})
        self.assertEqual(await asyncio.wait_for(stream.__anext__(), 10), {})
        bumped = self.other.bump(self.key)
        self.assertEqual(await asyncio.wait_for(stream.__anext__(), 10), {self.key: bumped})
        await stream.aclose()

    async def test_bad_input_is_a_syncgen_error(self) -> None:
        with self.assertRaises(SyncgenError) as raised:
            await self.client.bump("")
        self.assertEqual(raised.exception.code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("key must not be empty", raised.exception.details)


if __name__ == "__main__":
    unittest.main()
