"""djblets' GenerationSynchronizer cases, against a real syncgen server.

Needs SYNCGEN_TEST_SERVER=HOST:PORT (test/python-client.test.ts starts the server).
"""

import os
import socket
import sys
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from syncgen import GenerationSynchronizer, SyncgenClient  # noqa: E402

SERVER = os.environ.get("SYNCGEN_TEST_SERVER", "")


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return "127.0.0.1:%d" % probe.getsockname()[1]


@unittest.skipUnless(SERVER, "SYNCGEN_TEST_SERVER is not set")
class GenerationSynchronizerTests(unittest.TestCase):
    def setUp(self) -> None:
        self.client = SyncgenClient(SERVER)
        self.other = SyncgenClient(SERVER)
        self.key = "test-synchronizer-" + uuid.uuid4().hex
        self.sync = GenerationSynchronizer(self.client, self.key, key_prefix="example.com")

    def tearDown(self) -> None:
        self.client.close()
        self.other.close()

    def test_initial_state(self) -> None:
        self.assertEqual(self.sync.cache_key, "example.com:" + self.key)
        self.assertIsNotNone(self.sync.sync_gen)

    def test_is_expired_when_expired(self) -> None:
        self.other.bump(self.sync.cache_key)
        self.assertTrue(self.sync.is_expired())

    def test_is_expired_when_not_expired(self) -> None:
        self.assertFalse(self.sync.is_expired())

    def test_is_expired_with_service_down_logs_once(self) -> None:
        dead = SyncgenClient(free_address(), timeout=0.5)
        try:
            with self.assertLogs("syncgen.synchronizer", level="WARNING") as logs:
                sync = GenerationSynchronizer(dead, "down-" + uuid.uuid4().hex, key_prefix="example.com")
                self.assertIsNone(sync.sync_gen)
                for _ in range(5):
                    self.assertTrue(sync.is_expired())
            self.assertEqual(len(logs.output), 1)
            self.assertRegex(logs.output[0], r'refreshing generation of cache key "example\.com:down-\w+" failed: UNAVAILABLE')
        finally:
            dead.close()

    def test_refresh(self) -> None:
        bumped = self.other.bump(self.sync.cache_key)
        self.sync.refresh()
        self.assertEqual(self.sync.sync_gen, bumped)
        self.assertFalse(self.sync.is_expired())

    def test_clear(self) -> None:
        before = self.sync.sync_gen
        self.sync.clear()
        self.assertEqual(self.other.get(self.sync.cache_key, peek=True), 0)
        self.assertEqual(self.sync.sync_gen, before)
        self.assertTrue(self.sync.is_expired())

    def test_mark_updated(self) -> None:
        before = self.sync.sync_gen
        self.sync.mark_updated()
        self.assertGreater(self.sync.sync_gen, before)
        self.assertEqual(self.other.get(self.sync.cache_key, peek=True), self.sync.sync_gen)
        self.assertFalse(self.sync.is_expired())

    def test_list_key(self) -> None:
        sync = GenerationSynchronizer(self.client, ["teams:7", self.key], key_prefix="example.com")
        self.assertEqual(sync.cache_key, "example.com:teams%3A7:" + self.key)
        self.assertFalse(sync.is_expired())
        self.other.bump(sync.cache_key)
        self.assertTrue(sync.is_expired())

    def test_no_normalization_rejects_a_list_before_any_call(self) -> None:
        with self.assertRaises(TypeError):
            GenerationSynchronizer(self.client, ["a", "b"], normalize_cache_key=False)

    def test_watch_reports_changes(self) -> None:
        generation = self.sync.sync_gen
        stream = self.client.watch([self.sync.cache_key], known={self.sync.cache_key: generation})
        self.assertEqual(next(stream), {})
        bumped = self.other.bump(self.sync.cache_key)
        self.assertEqual(next(stream), {self.sync.cache_key: bumped})
        stream.close()


if __name__ == "__main__":
    unittest.main()
