"""A Python synchronizer driven line by line over stdin, for the TS<->Python interop test.

Commands (one per line): ``create KEY``, ``is_expired``, ``mark_updated``, ``refresh``,
``sync_gen``, ``make_cache_key JSON``. Each answer is one JSON line on stdout.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from syncgen import GenerationSynchronizer, SyncgenClient, make_cache_key  # noqa: E402


def main() -> None:
    client = SyncgenClient(sys.argv[1])
    prefix = sys.argv[2]
    sync = None
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "create":
            sync = GenerationSynchronizer(client, argument, key_prefix=prefix)
            answer = {"cache_key": sync.cache_key, "sync_gen": str(sync.sync_gen)}
        elif command == "is_expired":
            answer = {"is_expired": sync.is_expired()}
        elif command == "mark_updated":
            sync.mark_updated()
            answer = {"sync_gen": str(sync.sync_gen)}
        elif command == "refresh":
            sync.refresh()
            answer = {"sync_gen": str(sync.sync_gen)}
        elif command == "make_cache_key":
            keys = json.loads(argument)
            answer = {"keys": [make_cache_key(k, prefix=prefix) for k in keys]}
        else:
            answer = {"error": "unknown command " + command}
        print(json.dumps(answer), flush=True)
    client.close()


if __name__ == "__main__":
    main()
