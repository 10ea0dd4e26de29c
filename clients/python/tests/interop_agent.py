"""A Python synchronizer driven line by line over stdin, for the cross-language tests.

Commands (one per line): ``watch JSON`` (a watch-mode synchronizer; the key is a string or
a list of parts), ``await_live``, ``await_watched GEN`` (until the shared stream reports
GEN), ``is_expired``, ``mark_updated``, ``refresh``, ``sync_gen``, ``make_cache_key JSON``.
Each answer is one JSON line on stdout. test/go/interop-agent speaks the same commands.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from syncgen import GenerationSynchronizer, SyncgenClient, make_cache_key  # noqa: E402
from tests.test_synchronizer import wait_until  # noqa: E402


def main() -> None:
    client = SyncgenClient(sys.argv[1])
    prefix = sys.argv[2]
    sync = None

    def answer_to(command: str, argument: str) -> dict:
        nonlocal sync
        if command == "watch":
            sync = GenerationSynchronizer(client, json.loads(argument), key_prefix=prefix, watch=True)
            return {"cache_key": sync.cache_key, "sync_gen": str(sync.sync_gen)}
        if command == "await_live":
            wait_until(lambda: client.shared_watch.current(sync.cache_key) is not None, 30)
            return {"live": True}
        if command == "await_watched":
            wait_until(lambda: client.shared_watch.current(sync.cache_key) == int(argument), 30)
            return {"watched": argument, "is_expired": sync.is_expired()}
        if command == "is_expired":
            return {"is_expired": sync.is_expired()}
        if command == "mark_updated":
            sync.mark_updated()
            return {"sync_gen": str(sync.sync_gen)}
        if command == "refresh":
            sync.refresh()
            return {"sync_gen": str(sync.sync_gen)}
        if command == "make_cache_key":
            keys = json.loads(argument)
            return {"keys": [make_cache_key(k, prefix=prefix) for k in keys]}
        return {"error": "unknown command " + command}

    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        try:
            answer = answer_to(command, argument)
        except Exception as error:  # the test reads it, instead of a dead agent
            answer = {"error": repr(error)}
        print(json.dumps(answer), flush=True)
    client.close()


if __name__ == "__main__":
    main()
