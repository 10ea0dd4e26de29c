import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { describe, expect, test } from "vitest";
import { WatchRequestSchema } from "../../src/gen/generation/v1/generation_pb.js";
import { Code, GenerationServiceError } from "../../src/server/errors.js";
import { readWatchRequest } from "../../src/server/watch-request.js";

const limits = { maxKeyBytes: 12, maxWatchKeys: 3 };

/** A WatchRequest's bytes, `known` written as given (an object would lose "__proto__"). */
function encode(keys: string[], known: [string, bigint][] = []): Uint8Array {
  const writer = new BinaryWriter();
  for (const key of keys) writer.tag(1, 2).string(key);
  for (const [key, generation] of known)
    writer.tag(2, 2).fork().tag(1, 2).string(key).tag(2, 0).int64(generation).join();
  return writer.finish();
}

function refusal(bytes: Uint8Array): { code: Code; message: string } {
  try {
    readWatchRequest(bytes, limits);
  } catch (error) {
    if (error instanceof GenerationServiceError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error("the request was accepted");
}

describe("readWatchRequest()", () => {
  test("reads what protobuf-es writes: keys in order, without duplicates", () => {
    const bytes = toBinary(WatchRequestSchema, create(WatchRequestSchema, { keys: ["a", "b", "a"], known: { b: 7n } }));
    const request = readWatchRequest(bytes, limits);
    expect(request.keys).toEqual(["a", "b"]);
    expect(Object.entries(request.known)).toEqual([["b", 7n]]);
  });

  test("keeps known entries only for watched keys, __proto__ and constructor included", () => {
    const request = readWatchRequest(
      encode(
        ["__proto__", "constructor"],
        [
          ["__proto__", 1n],
          ["constructor", 2n],
          ["unwatched", 3n],
        ],
      ),
      limits,
    );
    expect(Object.entries(request.known)).toEqual([
      ["__proto__", 1n],
      ["constructor", 2n],
    ]);
  });

  test("known may come before keys", () => {
    const writer = new BinaryWriter();
    writer.tag(2, 2).fork().tag(1, 2).string("k").tag(2, 0).int64(5n).join();
    writer.tag(1, 2).string("k");
    expect(Object.entries(readWatchRequest(writer.finish(), limits).known)).toEqual([["k", 5n]]);
  });

  test("skips fields of a newer contract", () => {
    const writer = new BinaryWriter();
    writer.tag(1, 2).string("k").tag(9, 0).uint32(1).tag(10, 2).string("later");
    expect(readWatchRequest(writer.finish(), limits).keys).toEqual(["k"]);
  });

  test.each([
    [
      "more keys entries than the limit, duplicates included",
      encode(["a", "a", "a", "a"]),
      "keys has more than 3 entries; the limit is 3 keys per Watch (server setting --max-watch-keys)",
    ],
    [
      "more known entries than the limit",
      encode(
        ["a"],
        [
          ["a", 1n],
          ["b", 1n],
          ["c", 1n],
          ["d", 1n],
        ],
      ),
      "known has more than 3 entries; it holds at most one per watched key (server setting --max-watch-keys)",
    ],
    ["an empty key", encode(["a", ""]), "keys[1] must not be empty"],
    [
      "a key over the size limit",
      encode(["1234567890123"]),
      "keys[0] is 13 bytes long; the limit is 12 bytes (server setting --max-key-bytes)",
    ],
    [
      "invalid UTF-8",
      new Uint8Array([0x0a, 0x02, 0xff, 0xfe]),
      "the request is not a valid generation.v1.WatchRequest: The encoded data was not valid for encoding utf-8",
    ],
    [
      "a length past the end",
      new Uint8Array([0x0a, 0x7f, 0x61]),
      "the request is not a valid generation.v1.WatchRequest: premature EOF",
    ],
  ])("refuses %s with INVALID_ARGUMENT", (_, bytes, message) => {
    expect(refusal(bytes)).toEqual({ code: Code.INVALID_ARGUMENT, message });
  });

  test("stops at the first entry past a limit, whatever follows", () => {
    // 20 MB of one-byte duplicate keys (read whole, this took protobuf-es seconds), ending in
    // a truncated field: read to the end, it would be refused for that instead.
    const bytes = new Uint8Array(20_000_001 + 2);
    for (let at = 0; at + 3 <= bytes.length - 2; at += 3) bytes.set([0x0a, 0x01, 0x61], at);
    bytes.set([0x0a, 0x7f], bytes.length - 2);
    expect(refusal(bytes).message).toMatch(/^keys has more than 3 entries/);
  });

  test("refuses millions of unknown fields without reading them all", () => {
    // Ending in a truncated field, as above.
    const bytes = new Uint8Array(1_000_000 + 2);
    for (let at = 0; at + 2 <= bytes.length - 2; at += 2) bytes.set([0x18, 0x01], at);
    bytes.set([0x0a, 0x7f], bytes.length - 2);
    expect(refusal(bytes).message).toBe("the request has more than 3 fields this server does not know");
  });

  test("skips a known entry too long to hold a watchable key, without decoding it", () => {
    const writer = new BinaryWriter();
    writer.tag(1, 2).string("k");
    writer.tag(2, 2).bytes(new Uint8Array(100).fill(0xff));
    expect(Object.entries(readWatchRequest(writer.finish(), limits).known)).toEqual([]);
  });
});
