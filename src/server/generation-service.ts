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
import type { GenerationStore } from "./store/generation-store.js";
import { checkWatchKeys, keyProblem, type RequestLimits } from "./validation.js";
import type { WatchHub } from "./watch-hub.js";

/** The key, if valid; otherwise INVALID_ARGUMENT with the problem. */
function checkedKey(key: string, limits: RequestLimits): string {
  const problem = keyProblem(key, limits);
  if (problem) throw new GenerationServiceError(problem, Code.INVALID_ARGUMENT);
  return key;
}

/** Builds the handlers of generation.v1.GenerationService. */
export function generationServiceHandlers(
  store: GenerationStore,
  hub: WatchHub,
  limits: RequestLimits,
): HandlersOf<typeof GenerationService> {
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
      const stream = hub.open(
        {
          send: (response) => writeResponse(call, response),
          onDrain: (listener) => call.once("drain", listener),
          end: (error) => endStream(call, error),
        },
        checked.keys,
        request.known,
      );
      call.on("cancelled", () => stream.close());
      call.on("error", () => stream.close());
    },
  };
}
