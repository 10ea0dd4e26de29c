"""djblets' make_cache_key, exactly (see src/client/cache-key.ts for the TypeScript twin).

1. A string is one part, as is. A sequence of two or more parts escapes, in each part,
   ``%`` as ``%25`` and then ``:`` as ``%3A``; a one-part sequence is used as is.
2. The prefix parts (djblets' site domain, and SITE_ROOT) go in front, joined with ``:``.
3. HMAC mode: the hex HMAC-SHA256 of the whole key (UTF-8); done.
4. Otherwise U+0000..U+0020 and U+007F become ``\\xNN`` (lowercase hex).
5. Longer than 240 code points: the first 176 followed by the hex SHA-256 of the whole key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Optional, Sequence, Union

MAX_KEY_SIZE = 240
_INVALID_KEY_CHARS_RE = re.compile(r"[\x00-\x20\x7f]")


def make_cache_key(
    key: Union[str, Sequence[str]],
    *,
    prefix: Union[None, str, Sequence[str]] = None,
    hmac_key: Optional[Union[str, bytes]] = None,
) -> str:
    """Builds the key djblets' make_cache_key builds for the same key and site prefix."""
    if isinstance(key, str):
        parts = [key]
    elif len(key) > 1:
        parts = [part.replace("%", "%25").replace(":", "%3A") for part in key]
    else:
        parts = list(key)
    if prefix is None:
        prefix_parts: list[str] = []
    elif isinstance(prefix, str):
        prefix_parts = [prefix]
    else:
        prefix_parts = list(prefix)
    joined = ":".join([*prefix_parts, *parts])
    if hmac_key is not None:
        secret = hmac_key.encode("utf-8") if isinstance(hmac_key, str) else hmac_key
        return hmac.new(secret, msg=joined.encode("utf-8"), digestmod=hashlib.sha256).hexdigest()
    escaped = _INVALID_KEY_CHARS_RE.sub(lambda m: "\\x%02x" % ord(m.group(0)), joined)
    if len(escaped) > MAX_KEY_SIZE:
        digest = hashlib.sha256(escaped.encode("utf-8")).hexdigest()
        escaped = escaped[: MAX_KEY_SIZE - len(digest)] + digest
    return escaped
