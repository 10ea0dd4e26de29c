/**
 * The GenerationService handlers: validate, call the store (or the watch hub), answer.
 * Semantics live in the store's scheme and the hub; nothing here but the mapping.
 */
import { create } from "@bufbuild/protobuf";
import {
  BumpResponseSchema,
  ClearResponseSchema,
  type GenerationService,
  GetResponseSchema,
} from "../gen/generation/v1/generation_pb.js";
import { Code, GenerationServiceError } from "./errors.js";
import { endStream, type HandlersOf, writeResponse } from "./grpc-service.js";
import type { AccessRules } from "./interceptors.js";
import type { GenerationStore } from "./store/generation-store.js";
import { checkWatchKeys, keyProblem, type RequestLimits } from "./validation.js";
import type { WatchHub, WatchStream } from "./watch-hub.js";
import type { WatchQuota } from "./watch-quota.js";

/** What each method does to which keys: access control checks a token against this. */
export const generationServiceAccess: AccessRules<typeof GenerationService> = {
  get: { permission: "read", keys: (request) => [request.key] },
  bump: { permission: "write", keys: (request) => [request.key] },
  clear: { permission: "write", keys: (request) => [request.key] },
  watch: { permission: "read", keys: (request) => request.keys },
};

/** What the handlers serve from. */
export interface GenerationServiceParts {
  store: GenerationStore;
  hub: WatchHub;
  limits: RequestLimits;
  watchQuota: WatchQuota;
}

/** The key, if valid; otherwise INVALID_ARGUMENT with the problem. */
function checkedKey(key: string, limits: RequestLimits): string {
  const problem = keyProblem(key, limits);
  if (problem) throw new GenerationServiceError(problem, Code.INVALID_ARGUMENT);
  return key;
}

/** Builds the handlers of generation.v1.GenerationService. */
export function generationServiceHandlers({
  store,
  hub,
  limits,
  watchQuota,
}: GenerationServiceParts): HandlersOf<typeof GenerationService> {
  return {
    async get(request) {
      const key = checkedKey(request.key, limits);
      const generation = request.peek ? ((await store.read([key]))[0]?.generation ?? 0n) : await store.get(key);
      return create(GetResponseSchema, { generation });
    },
    async bump(request) {
      const generation = await store.bump(checkedKey(request.key, limits));
      return create(BumpResponseSchema, { generation });
    },
    async clear(request) {
      await store.clear(checkedKey(request.key, limits));
      return create(ClearResponseSchema);
    },
    watch(request, call) {
      const checked = checkWatchKeys(request.keys, limits);
      if ("problem" in checked) throw new GenerationServiceError(checked.problem, Code.INVALID_ARGUMENT);
      const releaseSlot = watchQuota.acquire(call.getPeer());
      let stream: WatchStream | undefined;
      // A stream ends by cancellation or with an error status (it never completes by itself);
      // the hub may end it before `open` returns, so listen first.
      const finish = (): void => {
        stream?.close();
        releaseSlot();
      };
      call.on("cancelled", finish);
      call.on("error", finish);
      stream = hub.open(
        {
          send: (response) => writeResponse(call, response),
          onDrain: (listener) => call.once("drain", listener),
          end: (error) => endStream(call, error),
        },
        checked.keys,
        request.known,
      );
    },
  };
}
