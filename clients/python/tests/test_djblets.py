"""djblets' own GenerationSynchronizer test cases, ported to syncgen.djblets, in a real Django.

Django (Debian's python3-django) is configured here with django.contrib.sites on an in-memory
SQLite database, as a Django project using djblets would be; the server is a real syncgen
server (SYNCGEN_TEST_SERVER=HOST:PORT; test/python-client.test.ts starts it). djblets' tests
simulate another process with cache.set() and eviction with cache.delete(); here those are
another client's Bump and a Clear.
"""

import logging
import os
import sys
import time
import unittest
import uuid
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

SERVER = os.environ.get("SYNCGEN_TEST_SERVER", "")

if not settings.configured:
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.sites"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SITE_ID=1,
        SITE_ROOT="/reviews/",
        SYNCGEN_SERVER=SERVER,
        USE_TZ=True,
    )
    django.setup()

from django.contrib.sites.models import Site  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import override_settings  # noqa: E402

from syncgen import SyncgenClient, SyncgenError  # noqa: E402
from syncgen.djblets import GenerationSynchronizer, site_prefix  # noqa: E402
from tests.test_synchronizer import wait_until  # noqa: E402

LOGGER = "syncgen.djblets"


@unittest.skipUnless(SERVER, "SYNCGEN_TEST_SERVER is not set")
class DjbletsGenerationSynchronizerTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        call_command("migrate", verbosity=0)
        Site.objects.filter(pk=1).update(domain="example.com")
        Site.objects.clear_cache()

    def setUp(self) -> None:
        self.other = SyncgenClient(SERVER)
        self.key = "test-synchronizer-" + uuid.uuid4().hex

    def tearDown(self) -> None:
        self.other.close()

    def test_init_with_cache_key(self) -> None:
        sync = GenerationSynchronizer(self.key)
        self.assertEqual(sync.cache_key, "example.com:/reviews/:" + self.key)
        self.assertEqual(sync.sync_gen, self.other.get(sync.cache_key, peek=True))

    def test_init_without_normalizing(self) -> None:
        sync = GenerationSynchronizer(self.key, normalize_cache_key=False)
        self.assertEqual(sync.cache_key, self.key)

    def test_init_with_a_key_sequence_unnormalized_is_value_error(self) -> None:
        with self.assertRaises(ValueError):
            GenerationSynchronizer([self.key, "b"], normalize_cache_key=False)

    def test_with_cache_key_sequence(self) -> None:
        sync = GenerationSynchronizer([self.key, "a:b"])
        self.assertEqual(sync.cache_key, "example.com:/reviews/:%s:a%%3Ab" % self.key)
        old = sync.sync_gen
        sync.mark_updated()
        self.assertEqual(sync.sync_gen, old + 1)
        self.assertEqual(self.other.get(sync.cache_key, peek=True), old + 1)

    def test_mark_updated(self) -> None:
        sync = GenerationSynchronizer(self.key)
        old = sync.sync_gen
        sync.mark_updated()
        self.assertEqual(sync.sync_gen, old + 1)
        self.assertEqual(self.other.get(sync.cache_key, peek=True), old + 1)
        self.assertFalse(sync.is_expired())

    def test_is_expired(self) -> None:
        sync = GenerationSynchronizer(self.key)
        self.assertFalse(sync.is_expired())
        self.other.bump(sync.cache_key)  # another process updates the state
        self.assertTrue(sync.is_expired())

    def test_is_expired_after_eviction(self) -> None:
        sync = GenerationSynchronizer(self.key)
        self.other.clear(sync.cache_key)
        self.assertTrue(sync.is_expired())

    def test_refresh(self) -> None:
        sync = GenerationSynchronizer(self.key)
        self.other.bump(sync.cache_key)
        sync.refresh()
        self.assertFalse(sync.is_expired())
        self.assertEqual(sync.sync_gen, self.other.get(sync.cache_key, peek=True))

    def test_clear(self) -> None:
        sync = GenerationSynchronizer(self.key)
        other = GenerationSynchronizer(self.key)
        sync.clear()
        self.assertTrue(sync.is_expired())
        self.assertTrue(other.is_expired())

    def test_is_expired_with_exception(self) -> None:
        sync = GenerationSynchronizer(self.key)
        failure = SyncgenError(mock.sentinel.code, "the server is unreachable")
        with mock.patch.object(sync._client, "get", side_effect=failure):
            with self.assertLogs(LOGGER, logging.ERROR) as logs:
                self.assertTrue(sync.is_expired())
        self.assertEqual(len(logs.records), 1)
        record = logs.records[0]
        self.assertEqual(record.levelno, logging.ERROR)
        self.assertIsNotNone(record.exc_info)  # the traceback, as logger.exception gives
        self.assertIn(sync.cache_key, record.getMessage())

    def test_first_read_failing_starts_from_the_local_clock(self) -> None:
        failure = SyncgenError(mock.sentinel.code, "the server is unreachable")
        with mock.patch.object(SyncgenClient, "get", side_effect=failure):
            with self.assertLogs(LOGGER, logging.ERROR) as logs:
                before = int(time.time())
                sync = GenerationSynchronizer(self.key)
        self.assertGreaterEqual(sync.sync_gen, before)
        self.assertLessEqual(sync.sync_gen, int(time.time()))
        self.assertEqual(len(logs.records), 1)

    def test_with_syncgen_watch_is_expired_answers_from_the_stream(self) -> None:
        with override_settings(SYNCGEN_WATCH=True):
            sync = GenerationSynchronizer(self.key)
        watch = sync._client.shared_watch
        wait_until(lambda: watch.current(sync.cache_key) is not None)
        with mock.patch.object(sync._client, "get", side_effect=AssertionError("a call in watch mode")):
            self.assertFalse(sync.is_expired())
            self.other.bump(sync.cache_key)
            wait_until(sync.is_expired)
        sync.close()

    def test_without_sites_no_prefix(self) -> None:
        with mock.patch.object(Site.objects, "get_current", side_effect=RuntimeError("no sites app")):
            self.assertEqual(site_prefix(), [])
            self.assertEqual(GenerationSynchronizer(self.key).cache_key, self.key)


if __name__ == "__main__":
    unittest.main()
