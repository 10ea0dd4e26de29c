"""syncgen's Python client: djblets' GenerationSynchronizer on a syncgen server.

A Python service joins the same keys as TypeScript services: ``make_cache_key`` is djblets'
own algorithm, so with the same prefix both sides name a key the same way. asyncio code uses
``syncgen.aio.AsyncSyncgenClient``; a Django project on djblets switches with
``syncgen.djblets.GenerationSynchronizer``.

    from syncgen import SyncgenClient, GenerationSynchronizer

    client = SyncgenClient("127.0.0.1:50051")
    sync = GenerationSynchronizer(client, "users:42", key_prefix="example.com")
    if sync.is_expired():
        reload()
        sync.refresh()
"""

from syncgen.cache_key import MAX_KEY_SIZE, make_cache_key
from syncgen.client import SyncgenClient, SyncgenError
from syncgen.synchronizer import GenerationSynchronizer

__all__ = [
    "MAX_KEY_SIZE",
    "GenerationSynchronizer",
    "SyncgenClient",
    "SyncgenError",
    "make_cache_key",
]
