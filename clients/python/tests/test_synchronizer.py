"""djblets' GenerationSynchronizer cases, against a real syncgen server.

Needs SYNCGEN_TEST_SERVER=HOST:PORT (test/python-client.test.ts starts the server).
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from syncgen import GenerationSynchronizer, SyncgenClient  # noqa: E402

SERVER = os.environ.get("SYNCGEN_TEST_SERVER", "")
# The syncgen CLI (bin/syncgen.js) and the node to run it with, for tests that run servers of their own.
CLI = os.environ.get("SYNCGEN_TEST_CLI", "")
NODE = os.environ.get("SYNCGEN_TEST_NODE", "node")


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


class ServeProcess:
    """A `syncgen serve` of its own (memory store) on ``address``, for tests that stop and restart it."""

    def __init__(self, address: str, *flags: str) -> None:
        # The memory store, whatever REDIS_URL the tests run with: a restart starts it empty.
        env = {name: value for name, value in os.environ.items() if name != "REDIS_URL"}
        self._process = subprocess.Popen(
            [NODE, CLI, "serve", "--listen", address, "--metrics-listen", "", *flags],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self._process.stdout is not None
        for line in self._process.stdout:  # its first line says it listens
            if '"event":"start"' in line:
                break
        else:
            raise AssertionError("syncgen serve exited before listening")

    def reload(self) -> None:
        """SIGHUP: the server reads its --auth-file again."""
        self._process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait(15)
        if self._process.stdout is not None:
            self._process.stdout.close()


def wait_until(condition, seconds: float = 15.0) -> None:
    """Waits for ``condition()`` (a stream's answer arrives on another thread); fails at the deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %s s" % seconds)
        time.sleep(0.01)


@unittest.skipUnless(SERVER, "SYNCGEN_TEST_SERVER is not set")
class WatchModeTests(unittest.TestCase):
    def setUp(self) -> None:
        self.client = SyncgenClient(SERVER)
        self.other = SyncgenClient(SERVER)
        self.key = "test-watch-mode-" + uuid.uuid4().hex

    def tearDown(self) -> None:
        self.client.close()
        self.other.close()

    def test_is_expired_answers_from_the_live_stream_without_a_call(self) -> None:
        sync = GenerationSynchronizer(self.client, self.key, watch=True)
        wait_until(lambda: self.client.shared_watch.current(sync.cache_key) is not None)
        with mock.patch.object(self.client, "get", side_effect=AssertionError("a call in watch mode")):
            self.assertFalse(sync.is_expired())
            self.other.bump(sync.cache_key)  # another process
            wait_until(sync.is_expired)
        sync.refresh()
        self.assertFalse(sync.is_expired())
        sync.mark_updated()
        self.assertFalse(sync.is_expired())  # the writer itself is current
        sync.close()

    def test_synchronizers_of_one_client_share_one_stream_and_see_clears(self) -> None:
        first = GenerationSynchronizer(self.client, self.key, watch=True)
        second = GenerationSynchronizer(self.client, [self.key, "other"], watch=True)
        watch = self.client.shared_watch
        wait_until(lambda: watch.current(first.cache_key) is not None and watch.current(second.cache_key) is not None)
        self.other.clear(first.cache_key)
        wait_until(first.is_expired)
        self.assertFalse(second.is_expired())
        first.close()
        self.assertIsNone(watch.current(first.cache_key))  # no longer followed: checks call the server
        self.assertTrue(first.is_expired())
        second.close()

    @unittest.skipUnless(CLI, "SYNCGEN_TEST_CLI is not set")
    def test_a_server_gone_and_back(self) -> None:
        address = free_address()
        server = ServeProcess(address)
        client = SyncgenClient(address, timeout=1.0)
        try:
            sync = GenerationSynchronizer(client, self.key, watch=True, check_timeout=0.3, log_interval=0)
            wait_until(lambda: client.shared_watch.current(sync.cache_key) is not None)
            self.assertFalse(sync.is_expired())

            server.stop()
            wait_until(lambda: client.shared_watch.current(sync.cache_key) is None)
            with self.assertLogs("syncgen.synchronizer", "WARNING"):
                self.assertTrue(sync.is_expired())  # nothing known, the server gone: expired

            # Back, from an empty memory store: the key is absent, so the watcher is expired.
            server = ServeProcess(address)
            wait_until(lambda: client.shared_watch.current(sync.cache_key) is not None, 30)
            self.assertTrue(sync.is_expired())
            sync.refresh()
            self.assertFalse(sync.is_expired())
            with SyncgenClient(address) as other:
                other.bump(sync.cache_key)
            wait_until(sync.is_expired)
            sync.close()
        finally:
            client.close()
            server.stop()

    @unittest.skipUnless(CLI, "SYNCGEN_TEST_CLI is not set")
    def test_a_refused_stream_is_tried_again(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            tokens = os.path.join(folder, "tokens.json")
            grant = '{"tokens":[{"name":"reader","token":"python-reader-0123456789","read":[%s]}]}'
            with open(tokens, "w") as file:
                file.write(grant % '"allowed/"')
            address = free_address()
            server = ServeProcess(address, "--auth-file", tokens)
            client = SyncgenClient(address, token="python-reader-0123456789", timeout=1.0)
            try:
                with self.assertLogs("syncgen", "ERROR") as logs:
                    sync = GenerationSynchronizer(client, "forbidden/" + self.key, watch=True)
                    wait_until(lambda: any("PERMISSION_DENIED" in line for line in logs.output))
                self.assertIsNone(client.shared_watch.current(sync.cache_key))
                # The token is granted the key: the stream is tried again, and goes live.
                with open(tokens, "w") as file:
                    file.write(grant % '""')
                server.reload()
                wait_until(lambda: client.shared_watch.current(sync.cache_key) is not None, 30)
                sync.close()
            finally:
                client.close()
                server.stop()

    def test_a_stream_down_falls_back_to_calls(self) -> None:
        address = free_address()
        lonely = SyncgenClient(address, timeout=0.5)
        try:
            sync = GenerationSynchronizer(lonely, self.key, watch=True, check_timeout=0.2, log_interval=0)
            self.assertIsNone(lonely.shared_watch.current(sync.cache_key))
            with self.assertLogs("syncgen.synchronizer", "WARNING"):
                self.assertTrue(sync.is_expired())  # nothing known, the server unreachable: expired
            sync.close()
        finally:
            lonely.close()


if __name__ == "__main__":
    unittest.main()
