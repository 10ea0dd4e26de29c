/**
 * The GenerationService handlers: validate, call the records (or the watch hub), answer.
 * Semantics live in the store's scheme and the hub; nothing here but the mapping. How large
 * each request may be, and how a Watch request is read within its limits, is said here too.
 */
import { create } from "@bufbuild/protobuf";
import {
  BumpResponseSchema,
  ClearResponseSchema,
  type GenerationService,
  GetResponseSchema,
} from "../gen/generation/v1/generation_pb.js";
import type { AccessRules } from "./access-control.js";
import type { ServerConfig } from "./config.js";
import { Code, GenerationServiceError } from "./errors.js";
import { type HandlersOf, type ReadingsOf, untilCancelled } from "./handler.js";
import type { GenerationRecords } from "./store/generation-store.js";
import { checkWatchKeys, keyProblem, type RequestLimits } from "./validation.js";
import type { WatchHub } from "./watch-hub.js";
import type { WatchQuota } from "./watch-quota.js";
import { readWatchRequest, readWatchRequestJson } from "./watch-request.js";

/** What each method does to which keys: access control checks a token against this. */
export const generationServiceAccess: AccessRules<typeof GenerationService> = {
  get: { permission: "read", keys: (request) => [request.key] },
  bump: { permission: "write", keys: (request) => [request.key] },
  clear: { permission: "write", keys: (request) => [request.key] },
  watch: { permission: "read", keys: (request) => request.keys },
};

/** What the handlers serve from. */
export interface GenerationServiceParts {
  records: GenerationRecords;
  hub: WatchHub;
  limits: RequestLimits;
  watchQuota: WatchQuota;
}

/** Room for a unary request's framing and fields besides its key (and those of newer clients). */
const UNARY_OVERHEAD_BYTES = 1024;

/** Framing per Watch key: its tag and length in `keys`, and its `known` entry's tag, length and generation. */
const WATCH_KEY_OVERHEAD_BYTES = 32;

/** The default largest Watch request is never below this, whatever the key limits. */
const MIN_WATCH_REQUEST_BYTES = 64 << 10;

/**
 * The largest Watch request: --max-message-bytes, or by default the most keys of the longest
 * size, each with its known generation.
 */
export function maxWatchRequestBytes(
  config: Pick<ServerConfig, "maxMessageBytes" | "maxKeyBytes" | "maxWatchKeys">,
): number {
  if (config.maxMessageBytes > 0) return config.maxMessageBytes;
  const fitsLargest = config.maxWatchKeys * (2 * config.maxKeyBytes + WATCH_KEY_OVERHEAD_BYTES);
  return Math.min(2 ** 31 - 1, Math.max(MIN_WATCH_REQUEST_BYTES, fitsLargest));
}

/** How large each request may be, and how a Watch request is read. */
export function generationServiceReadings(
  config: Pick<ServerConfig, "maxMessageBytes" | "maxKeyBytes" | "maxWatchKeys">,
): ReadingsOf<typeof GenerationService> {
  const watchBytes = maxWatchRequestBytes(config);
  const keyBound = config.maxKeyBytes + UNARY_OVERHEAD_BYTES;
  const unary =
    config.maxMessageBytes > 0 && config.maxMessageBytes < keyBound
      ? { bytes: config.maxMessageBytes, setting: "server setting --max-message-bytes" }
      : { bytes: keyBound, setting: "server setting --max-key-bytes, plus 1 KiB" };
  return {
    get: unary,
    bump: unary,
    clear: unary,
    watch: {
      bytes: watchBytes,
      setting:
        config.maxMessageBytes > 0
          ? "server setting --max-message-bytes"
          : "sized from server settings --max-watch-keys and --max-key-bytes, or set by --max-message-bytes",
      decode: (bytes) => readWatchRequest(bytes, config),
      decodeJson: (bytes) => readWatchRequestJson(bytes, config),
    },
  };
}

/** The key, if valid; otherwise INVALID_ARGUMENT with the problem. */
function checkedKey(key: string, limits: RequestLimits): string {
  const problem = keyProblem(key, limits);
  if (problem) throw new GenerationServiceError(problem, Code.INVALID_ARGUMENT);
  return key;
}

/** Builds the handlers of generation.v1.GenerationService. */
export function generationServiceHandlers({
  records,
  hub,
  limits,
  watchQuota,
}: GenerationServiceParts): HandlersOf<typeof GenerationService> {
  return {
    async get(request) {
      const key = checkedKey(request.key, limits);
      const generation = request.peek ? ((await records.read([key]))[0]?.generation ?? 0n) : await records.get(key);
      return create(GetResponseSchema, { generation });
    },
    async bump(request) {
      const generation = await records.bump(checkedKey(request.key, limits));
      return create(BumpResponseSchema, { generation });
    },
    async clear(request) {
      await records.clear(checkedKey(request.key, limits));
      return create(ClearResponseSchema);
    },
    // Not async: a suspended async function would cost each open stream ~400 bytes.
    watch(request, context, sink) {
      const checked = checkWatchKeys(request.keys, limits);
      if ("problem" in checked) throw new GenerationServiceError(checked.problem, Code.INVALID_ARGUMENT);
      const slot = watchQuota.acquire(context.peer);
      context.onEnd(() => slot.release());
      return untilCancelled(context, (end) =>
        hub.open(sink, checked.keys, new Map(Object.entries(request.known)), end),
      );
    },
  };
}
