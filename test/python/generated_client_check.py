"""A client generated from proto/ alone (protoc + grpc_python_plugin), exercising every RPC.

Usage: generated_client_check.py GENERATED_DIR HOST:PORT KEY
Prints one JSON object describing what the server answered.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from generation.v1 import generation_pb2, generation_pb2_grpc  # noqa: E402


def main() -> None:
    address, key = sys.argv[2], sys.argv[3]
    with grpc.insecure_channel(address) as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)
        result = {}
        result["peek_absent"] = stub.Get(generation_pb2.GetRequest(key=key, peek=True), timeout=5).generation
        result["created"] = stub.Get(generation_pb2.GetRequest(key=key), timeout=5).generation
        result["bumped"] = stub.Bump(generation_pb2.BumpRequest(key=key), timeout=5).generation
        watch = stub.Watch(generation_pb2.WatchRequest(keys=[key], known={key: result["created"]}), timeout=10)
        first = next(watch)
        result["watch_first"] = [[c.key, c.generation] for c in first.changes]
        stub.Clear(generation_pb2.ClearRequest(key=key), timeout=5)
        second = next(watch)
        result["watch_after_clear"] = [[c.key, c.generation] for c in second.changes]
        watch.cancel()
        try:
            stub.Bump(generation_pb2.BumpRequest(key=""), timeout=5)
            result["empty_key"] = "OK"
        except grpc.RpcError as error:
            result["empty_key"] = error.code().name
            result["empty_key_details"] = error.details()
        print(json.dumps(result))


if __name__ == "__main__":
    main()
