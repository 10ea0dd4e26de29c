"""djblets' own make_cache_key vectors (djblets/cache/tests/test_backend.py, djblets 6.0)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from syncgen import make_cache_key  # noqa: E402

SITE = "example.com"
SITE_WITH_ROOT = ("example.com", "/subdir/")
DEFAULT_HMAC_KEY = "af=y9ydd51a0g#be"
CUSTOM_HMAC_KEY = b"0123456789abcdef"

VECTORS = [
    ("test123", {"prefix": SITE}, "example.com:test123"),
    (("test", "123"), {"prefix": SITE}, "example.com:test:123"),
    (("%test%", "%1:2:3%"), {"prefix": SITE}, "example.com:%25test%25:%251%3A2%3A3%25"),
    ("test123", {"prefix": SITE_WITH_ROOT}, "example.com:/subdir/:test123"),
    (("test", ":123"), {"prefix": SITE_WITH_ROOT}, "example.com:/subdir/:test:%3A123"),
    ("test123", {}, "test123"),
    (("test", ":123"), {}, "test:%3A123"),
    ("test\U0001f973123", {"prefix": SITE}, "example.com:test\U0001f973123"),
    ((":test", "\U0001f973123"), {"prefix": SITE}, "example.com:%3Atest:\U0001f973123"),
    ('test\0\tkey !"\x7f', {"prefix": SITE}, r'example.com:test\x00\x09key\x20!"\x7f'),
    (("t:est\0\t", 'k%ey !"\x7f'), {"prefix": SITE}, r'example.com:t%3Aest\x00\x09:k%25ey\x20!"\x7f'),
    ("x" * 228, {"prefix": SITE}, "example.com:" + "x" * 228),
    (("x" * 10, "x" * 217), {"prefix": SITE}, "example.com:xxxxxxxxxx:" + "x" * 217),
    (
        "x" * 229,
        {"prefix": SITE},
        "example.com:" + "x" * 164 + "edf8474a1b91e737ec28252abe7a8aa5604539b239505e8ccad8890a44198c58",
    ),
    (
        ("x" * 10, "x" * 218),
        {"prefix": SITE},
        "example.com:xxxxxxxxxx:" + "x" * 153 + "c1f6edf6f476acb93b1858f99ee2fbe8dac1907d595c7f9f9d211fe7c46335c1",
    ),
    (
        "abc123",
        {"prefix": SITE, "hmac_key": DEFAULT_HMAC_KEY},
        "0a3195ea908f9bd178ab3c67a257ea4e7954e4b67ac240d1c86953953cde3a0b",
    ),
    (
        ("abc", "123"),
        {"prefix": SITE, "hmac_key": DEFAULT_HMAC_KEY},
        "61f180a36b711a5364235cc13096d237b5b27256be8aa78e723faf1d73237851",
    ),
    (
        "abc123",
        {"prefix": SITE, "hmac_key": CUSTOM_HMAC_KEY},
        "10c4714f5c6c49045ed25c8da7d04a4be2254fa275fc3b63bdeebe887aee52f9",
    ),
    (
        ("abc", "123"),
        {"prefix": SITE, "hmac_key": CUSTOM_HMAC_KEY},
        "c93f54fcf3063f17a1bb59d74e3ecd146a1154ea0bf7a4a7d95c82e71c56be7e",
    ),
]


class MakeCacheKeyTests(unittest.TestCase):
    def test_djblets_vectors(self) -> None:
        for key, options, expected in VECTORS:
            with self.subTest(key=key, options=options):
                self.assertEqual(make_cache_key(key, **options), expected)


if __name__ == "__main__":
    unittest.main()
