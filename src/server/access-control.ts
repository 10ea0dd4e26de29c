/**
 * Who may do what: bearer tokens from the auth file, each allowed to read (Get, Watch) and
 * write (Bump, Clear) keys under its prefixes. Tokens are compared in constant time, by their
 * SHA-256, and never leave this module: callers see only the token's name.
 *
 * The auth file is JSON:
 *
 *     { "tokens": [
 *         { "name": "billing", "token": "…", "read": ["billing/"], "write": ["billing/"] },
 *         { "name": "dashboard", "sha256": "<hex of SHA-256(token)>", "read": [""] } ] }
 *
 * `token` holds the secret itself; `sha256` its digest, so the file need not hold the secret.
 * The prefix "" covers every key.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { RequestOf } from "../rpc/service-definition.js";
import { Code, GenerationServiceError } from "./errors.js";
import { ConfigError } from "./settings.js";

/** What a call does to its keys. */
export type Permission = "read" | "write";

/** The holder of a token: its name (for logs) and the key prefixes it may use. */
export interface Principal {
  readonly name: string;
  readonly read: readonly string[];
  readonly write: readonly string[];
}

/** Shortest token accepted: anything shorter can be guessed. */
const MIN_TOKEN_LENGTH = 16;

interface Entry {
  readonly digest: Buffer;
  readonly principal: Principal;
}

/** What one method does to which keys of its request. */
export interface MethodAccess<Request> {
  permission: Permission;
  keys(request: Request): readonly string[];
}

/** The access rule of every method of a generated service, e.g. `AccessRules<typeof GenerationService>`. */
export type AccessRules<S> =
  S extends GenService<infer T extends GenServiceMethods> ? { [K in keyof T]: MethodAccess<RequestOf<T[K]>> } : never;

/** The token table of an auth file. */
export class AccessControl {
  private constructor(private readonly entries: readonly Entry[]) {}

  /** Reads and checks an auth file; throws ConfigError naming the problem (--auth-file). */
  static async fromFile(path: string): Promise<AccessControl> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      throw new ConfigError(`cannot read the auth file ${path}: ${(error as Error).message}`);
    }
    return AccessControl.parse(text, path);
  }

  /** Parses the text of an auth file; `source` names it in errors. */
  static parse(text: string, source: string): AccessControl {
    const fail = (problem: string): never => {
      throw new ConfigError(`auth file ${source}: ${problem}`);
    };
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      // Not V8's message: it quotes the text around the error, which may be a token.
      return fail("not valid JSON (check it with a JSON validator; the error is not quoted, as it may show a token)");
    }
    const tokens = isObject(document) ? document.tokens : undefined;
    if (!Array.isArray(tokens) || tokens.length === 0)
      return fail(`expected {"tokens": [ ... ]} with at least one token`);
    const names = new Set<string>();
    const digests = new Set<string>();
    const entries = tokens.map((raw: unknown, index): Entry => {
      const at = `tokens[${index}]`;
      if (!isObject(raw)) return fail(`${at} is not an object`);
      const { name, token, sha256, read = [], write = [] } = raw;
      if (typeof name !== "string" || name === "") return fail(`${at}.name must be a non-empty string`);
      if (names.has(name)) return fail(`${at}.name "${name}" is used twice`);
      names.add(name);
      const prefixes = (field: string, value: unknown): string[] =>
        Array.isArray(value) && value.every((prefix) => typeof prefix === "string")
          ? value
          : fail(`${at}.${field} must be a list of key prefixes ("" for every key)`);
      const principal = { name, read: prefixes("read", read), write: prefixes("write", write) };
      if (principal.read.length + principal.write.length === 0) {
        return fail(`${at} ("${name}") grants nothing: give it "read" or "write" prefixes`);
      }
      if ((token === undefined) === (sha256 === undefined)) {
        return fail(`${at} ("${name}") needs exactly one of "token" and "sha256"`);
      }
      let digest: Buffer;
      if (token !== undefined) {
        if (typeof token !== "string" || token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
          return fail(
            `${at} ("${name}"): "token" must be at least ${MIN_TOKEN_LENGTH} characters without spaces (it travels as "Bearer <token>")`,
          );
        }
        digest = digestOf(token);
      } else if (typeof sha256 === "string" && /^[0-9a-fA-F]{64}$/.test(sha256)) {
        digest = Buffer.from(sha256, "hex");
      } else {
        return fail(`${at} ("${name}"): "sha256" must be 64 hex digits`);
      }
      // Two names for one token would make which name a call runs under a matter of order.
      if (digests.has(digest.toString("hex"))) return fail(`${at} ("${name}") has the same token as an earlier entry`);
      digests.add(digest.toString("hex"));
      return { digest, principal };
    });
    return new AccessControl(entries);
  }

  /** How many tokens the table holds. */
  get size(): number {
    return this.entries.length;
  }

  /**
   * The principal of the `authorization` metadata values; UNAUTHENTICATED when there is no
   * `Bearer` token or it is not in the table.
   */
  authenticate(authorization: readonly unknown[]): Principal {
    const header = authorization.length === 1 ? authorization[0] : undefined;
    const match = typeof header === "string" ? /^Bearer (\S+)$/i.exec(header.trim()) : null;
    if (!match?.[1]) {
      throw new GenerationServiceError(
        "this server requires a token: send the metadata `authorization: Bearer <token>`",
        Code.UNAUTHENTICATED,
      );
    }
    const digest = digestOf(match[1]);
    let found: Principal | undefined;
    // Every entry is compared, so the time taken says nothing about which one matched.
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, digest)) found = entry.principal;
    }
    if (!found) throw new GenerationServiceError("the token is not valid on this server", Code.UNAUTHENTICATED);
    return found;
  }

  /** Throws PERMISSION_DENIED unless `principal` may `permission` every one of `keys`. */
  authorize(principal: Principal, permission: Permission, keys: readonly string[]): void {
    const prefixes = principal[permission];
    const denied = keys.filter((key) => !prefixes.some((prefix) => key.startsWith(prefix)));
    if (denied.length === 0) return;
    const allowed = prefixes.length === 0 ? "none" : prefixes.map((prefix) => JSON.stringify(prefix)).join(", ");
    const which =
      denied.length === 1
        ? `key ${JSON.stringify(denied[0])}`
        : `${denied.length} of the keys, e.g. ${JSON.stringify(denied[0])}`;
    throw new GenerationServiceError(
      `token "${principal.name}" may not ${permission} ${which}; its ${permission} prefixes: ${allowed}`,
      Code.PERMISSION_DENIED,
    );
  }
}

function digestOf(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
