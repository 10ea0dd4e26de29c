/**
 * What the HTTP port knows of a call beyond Connect's own context: one object per request,
 * made by the routes (connect-routes.ts) before Connect runs, kept in the call's context
 * values, and read by the Connect adapter and interceptors.
 */
import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";
import type { Principal } from "./access-control.js";
import type { GenerationServiceError } from "./errors.js";

/** One request on the HTTP port. */
export interface HttpCall {
  /** The client's connection ("IP:PORT"): calls on one connection share it. */
  readonly peer: string;
  /** The request as its method's own bounded reader decoded it: what the handler serves and access control checks. */
  decodedRequest: unknown;
  /** Who the token names, once authenticated (before the body is read). */
  principal: Principal | undefined;
  /** Whether the metrics interceptor saw the call (a request refused while its body was read never reaches it). */
  observed: boolean;
  /** Why the call was refused before its handler ran, when it was. */
  refusal: GenerationServiceError | undefined;
}

const httpCallKey = createContextKey<HttpCall | undefined>(undefined);

/** The context values of a new request from `peer`. */
export function httpCallValues(peer: string): { values: ContextValues; call: HttpCall } {
  const call: HttpCall = {
    peer,
    decodedRequest: undefined,
    principal: undefined,
    observed: false,
    refusal: undefined,
  };
  return { values: createContextValues().set(httpCallKey, call), call };
}

/** The request's HttpCall; a blank one for a call the routes did not start (never on the HTTP port). */
export function httpCallOf(values: ContextValues): HttpCall {
  return (
    values.get(httpCallKey) ?? {
      peer: "",
      decodedRequest: undefined,
      principal: undefined,
      observed: false,
      refusal: undefined,
    }
  );
}
