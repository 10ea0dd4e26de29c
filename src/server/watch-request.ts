/**
 * Reads a WatchRequest off the wire (binary, or JSON on the HTTP port) within the Watch
 * limits, without building the message first. A Watch request may legitimately be ~21 MB (10,000 keys of 1 KiB, each with its known
 * generation); decoding that much of something else — millions of tiny `known` entries or
 * duplicate keys — would take seconds of the event loop and keep tens of megabytes alive with
 * the stream. So entries are counted as they are read, and reading stops at the first one
 * past a limit (`keys`, `known` and unknown fields may each have --max-watch-keys entries);
 * a key is size-checked before it is decoded; duplicate keys collapse as they come; and of
 * `known`, only entries of watched keys are kept. What the stream then holds is bounded by
 * its distinct keys, never by what the request weighed.
 *
 * `known`, when the request has entries, comes back as an object without a prototype, so every
 * key, "__proto__" included, is an own property (protobuf-es's decoder assigns map entries
 * through Object.prototype).
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

/** Collects a Watch request's entries within the limits, as they are read. */
class WatchRequestBuilder {
  readonly #keys = new Set<string>();
  readonly #known = new Map<string, bigint>();
  #keyEntries = 0;
  #knownEntries = 0;
  #otherFields = 0;

  constructor(private readonly limits: RequestLimits) {}

  /** One entry of `keys`, `bytes` long in UTF-8; `decode` is called only once it is known to fit. */
  key(bytes: number, decode: () => string): void {
    const { maxWatchKeys } = this.limits;
    if (++this.#keyEntries > maxWatchKeys) {
      refuse(
        `keys has more than ${maxWatchKeys} entries; the limit is ${maxWatchKeys} keys per Watch (server setting --max-watch-keys)`,
      );
    }
    const problem = keySizeProblem(bytes, this.limits, `keys[${this.#keyEntries - 1}]`);
    if (problem) refuse(problem);
    this.#keys.add(decode());
  }

  /** Counts one entry of `known`; `read` gives it, or undefined for one too long to name a key that can be watched. */
  known(read: () => [string, bigint] | undefined): void {
    if (++this.#knownEntries > this.limits.maxWatchKeys) {
      refuse(
        `known has more than ${this.limits.maxWatchKeys} entries; it holds at most one per watched key (server setting --max-watch-keys)`,
      );
    }
    const entry = read();
    if (entry) this.#known.set(entry[0], entry[1]);
  }

  /** Counts a field this server does not know: skipped, but not millions of them. */
  other(): void {
    if (++this.#otherFields > this.limits.maxWatchKeys) {
      refuse(`the request has more than ${this.limits.maxWatchKeys} fields this server does not know`);
    }
  }

  /** The request: keys distinct in the order first named, and `known` of watched keys only. */
  build(): WatchRequest {
    const request = create(WatchRequestSchema, { keys: [...this.#keys] });
    // Without entries `known` stays the empty object `create` made: one without a prototype
    // is a dictionary, ~160 bytes that grpc-js keeps with the request for the stream's life.
    if (this.#known.size > 0) {
      const watchedKnown: Record<string, bigint> = Object.create(null);
      for (const [key, generation] of this.#known) if (this.#keys.has(key)) watchedKnown[key] = generation;
      request.known = watchedKnown;
    }
    return request;
  }
}

function refuse(problem: string): never {
  throw new GenerationServiceError(problem, Code.INVALID_ARGUMENT);
}

/**
 * Decodes a binary WatchRequest; throws GenerationServiceError (INVALID_ARGUMENT) naming the
 * limit or the flaw. Keys come back distinct, in the order first named.
 */
export function readWatchRequest(bytes: Uint8Array, limits: RequestLimits): WatchRequest {
  const builder = new WatchRequestBuilder(limits);
  const reader = new BinaryReader(bytes);
  try {
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field === KEYS_FIELD && wireType === WireType.LengthDelimited) {
        const key = reader.bytes();
        builder.key(key.length, () => utf8.decode(key));
      } else if (field === KNOWN_FIELD && wireType === WireType.LengthDelimited) {
        const entry = reader.bytes();
        builder.known(() => readKnownEntry(entry, limits));
      } else if (field === KEYS_FIELD || field === KNOWN_FIELD) {
        // protobuf-es would read these bytes another way than this reader: refuse, so that
        // what access control checks and what is served cannot differ.
        refuse(`field ${field} of ${WatchRequestSchema.typeName} has the wrong wire type`);
      } else {
        builder.other();
        reader.skip(wireType, field);
      }
    }
  } catch (error) {
    throw error instanceof GenerationServiceError ? error : undecodable(WatchRequestSchema.typeName, error);
  }
  return builder.build();
}

/**
 * Decodes a WatchRequest in proto3 JSON (UTF-8), within the same limits. Its separators and
 * brackets are counted before it is parsed, so text of millions of tiny entries, or nested
 * millions deep, is refused without being parsed. Fields other than `keys` and `known` are left for the protocol's own JSON reading
 * to accept or refuse.
 */
export function readWatchRequestJson(bytes: Uint8Array, limits: RequestLimits): WatchRequest {
  // Each key, each `known` entry's colon and comma, and a few fields and brackets besides.
  const entries = 3 * limits.maxWatchKeys + 16;
  const costly = jsonCostProblem(bytes, entries);
  if (costly) refuse(`${costly}; a Watch names at most ${limits.maxWatchKeys} keys (server setting --max-watch-keys)`);
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(bytes));
  } catch (error) {
    throw undecodable(WatchRequestSchema.typeName, error);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    refuse(`the request is not a valid ${WatchRequestSchema.typeName}: expected a JSON object`);
  }
  const { keys, known } = json as { keys?: unknown; known?: unknown };
  const builder = new WatchRequestBuilder(limits);
  if (keys !== undefined && keys !== null) {
    if (!Array.isArray(keys)) refuse("keys must be a JSON array of strings");
    for (const key of keys) {
      if (typeof key !== "string") refuse("keys must be a JSON array of strings");
      builder.key(Buffer.byteLength(key, "utf8"), () => key);
    }
  }
  if (known !== undefined && known !== null) {
    if (typeof known !== "object" || Array.isArray(known)) refuse("known must be a JSON object of generations by key");
    // JSON.parse makes every name an own property, "__proto__" included.
    for (const [key, value] of Object.entries(known)) builder.known(() => [key, int64(value, key)]);
  }
  return builder.build();
}

/** A proto3 JSON int64: a decimal string or an integral number. */
function int64(value: unknown, key: string): bigint {
  if ((typeof value === "string" && /^-?\d+$/.test(value)) || Number.isSafeInteger(value)) {
    const generation = BigInt(value as string | number);
    if (generation >= -(2n ** 63n) && generation < 2n ** 63n) return generation;
  }
  return refuse(`known[${JSON.stringify(key)}] must be a generation (an int64, as a decimal string)`);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** A WatchRequest in JSON nests two deep ({"known": {...}}); a little room for newer fields. */
const MAX_JSON_DEPTH = 4;

/**
 * What keeps JSON `text` from being parsed cheaply: more than `limit` separators (commas and
 * colons outside strings, a bound of its entries) or opening brackets, or nesting deeper than
 * a WatchRequest does; undefined when it may be parsed.
 */
function jsonCostProblem(text: Uint8Array, limit: number): string | undefined {
  let separators = 0;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const byte = text[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > MAX_JSON_DEPTH)
        return `the request nests deeper than ${MAX_JSON_DEPTH} levels; a WatchRequest nests two`;
      if (++separators > limit) return `the request holds more than ${limit} JSON entries`;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    } else if ((byte === COMMA || byte === COLON) && ++separators > limit) {
      return `the request holds more than ${limit} JSON entries`;
    }
  }
  return undefined;
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
