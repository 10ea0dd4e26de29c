/**
 * Reads a WatchRequest off the wire within the Watch limits, without building the message
 * first. A Watch request may legitimately be ~21 MB (10,000 keys of 1 KiB, each with its known
 * generation); decoding that much of something else — millions of tiny `known` entries or
 * duplicate keys — would take seconds of the event loop and keep tens of megabytes alive with
 * the stream. So entries are counted as they are read, and reading stops at the first one
 * past a limit (`keys`, `known` and unknown fields may each have --max-watch-keys entries);
 * a key is size-checked before it is decoded; duplicate keys collapse as they come; and of
 * `known`, only entries of watched keys are kept. What the stream then holds is bounded by
 * its distinct keys, never by what the request weighed.
 *
 * `known` comes back as an object without a prototype, so every key, "__proto__" included,
 * is an own property (protobuf-es's decoder assigns map entries through Object.prototype).
 */
import { create } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { type WatchRequest, WatchRequestSchema } from "../gen/generation/v1/generation_pb.js";
import { Code, GenerationServiceError, undecodable } from "./errors.js";
import { keySizeProblem, type RequestLimits } from "./validation.js";

const KEYS_FIELD = 1;
const KNOWN_FIELD = 2;
const ENTRY_KEY_FIELD = 1;
const ENTRY_VALUE_FIELD = 2;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes a binary WatchRequest; throws GenerationServiceError (INVALID_ARGUMENT) naming the
 * limit or the flaw. Keys come back distinct, in the order first named.
 */
export function readWatchRequest(bytes: Uint8Array, limits: RequestLimits): WatchRequest {
  const refuse = (problem: string): never => {
    throw new GenerationServiceError(problem, Code.INVALID_ARGUMENT);
  };
  const keys = new Set<string>();
  const known = new Map<string, bigint>();
  let keyEntries = 0;
  let knownEntries = 0;
  let otherFields = 0;
  const reader = new BinaryReader(bytes);
  try {
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === KEYS_FIELD && wireType === WireType.LengthDelimited) {
        if (++keyEntries > limits.maxWatchKeys) {
          refuse(
            `keys has more than ${limits.maxWatchKeys} entries; the limit is ${limits.maxWatchKeys} keys per Watch (server setting --max-watch-keys)`,
          );
        }
        const key = reader.bytes();
        const problem = keySizeProblem(key.length, limits, `keys[${keyEntries - 1}]`);
        if (problem) refuse(problem);
        keys.add(utf8.decode(key));
      } else if (field === KNOWN_FIELD && wireType === WireType.LengthDelimited) {
        if (++knownEntries > limits.maxWatchKeys) {
          refuse(
            `known has more than ${limits.maxWatchKeys} entries; it holds at most one per watched key (server setting --max-watch-keys)`,
          );
        }
        const entry = readKnownEntry(reader.bytes(), limits);
        if (entry) known.set(entry[0], entry[1]);
      } else {
        // Fields of a newer contract are skipped, but not millions of them.
        if (++otherFields > limits.maxWatchKeys) {
          refuse(`the request has more than ${limits.maxWatchKeys} fields this server does not know`);
        }
        reader.skip(wireType, field);
      }
    }
  } catch (error) {
    throw error instanceof GenerationServiceError ? error : undecodable(WatchRequestSchema.typeName, error);
  }
  const request = create(WatchRequestSchema, { keys: [...keys] });
  const watchedKnown: Record<string, bigint> = Object.create(null);
  for (const [key, generation] of known) if (keys.has(key)) watchedKnown[key] = generation;
  request.known = watchedKnown;
  return request;
}

/** Framing of a map entry beyond its key's bytes: two tags, the key's length, a 64-bit varint. */
const ENTRY_OVERHEAD_BYTES = 16;

/**
 * One `known` map entry; undefined for an entry too long to hold a key that can be watched
 * (it is skipped without being read). A missing key or value is the empty key or 0, as
 * protobuf decodes them.
 */
function readKnownEntry(bytes: Uint8Array, limits: RequestLimits): [string, bigint] | undefined {
  if (bytes.length > limits.maxKeyBytes + ENTRY_OVERHEAD_BYTES) return undefined;
  const reader = new BinaryReader(bytes);
  let key: Uint8Array = new Uint8Array();
  let generation = 0n;
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === ENTRY_KEY_FIELD && wireType === WireType.LengthDelimited) key = reader.bytes();
    else if (field === ENTRY_VALUE_FIELD && wireType === WireType.Varint) generation = BigInt(reader.int64());
    else reader.skip(wireType, field);
  }
  return [utf8.decode(key), generation];
}
