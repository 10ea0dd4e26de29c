/**
 * The layers' import boundaries, followed through every module a file loads: the client never
 * loads the server; the stores and the watch hub load nothing of gRPC or of the transport
 * adapter; handlers are transport-neutral, so a second transport plugs in beside
 * grpc-service.ts. Type-only imports load nothing and are not followed.
 */
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, test } from "vitest";

const SRC = resolve(import.meta.dirname, "../../src");

/** What a source file loads at run time: package names, or paths relative to src/ (with .ts). */
function runtimeImportsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), "utf8");
  const specs: string[] = [];
  for (const [, clause = "", spec = ""] of text.matchAll(/^(?:import|export)\s+([^;]*?)\s*from\s+"([^"]+)"/gms)) {
    const names = /^\{([^}]*)\}$/.exec(clause.trim())?.[1];
    const typeOnly =
      clause.startsWith("type ") ||
      names?.split(",").every((name) => name.trim() === "" || name.trim().startsWith("type "));
    if (typeOnly) continue;
    specs.push(spec.startsWith(".") ? relative(SRC, resolve(SRC, dirname(file), spec)).replace(/\.js$/, ".ts") : spec);
  }
  return specs;
}

/** Everything `file` loads, directly or through the modules of src/ it loads. */
function loadedBy(file: string): Set<string> {
  const seen = new Set<string>();
  const pending = [file];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    for (const spec of runtimeImportsOf(next)) {
      if (seen.has(spec)) continue;
      seen.add(spec);
      if (spec.endsWith(".ts")) pending.push(spec);
    }
  }
  return seen;
}

const TRANSPORT =
  /^@grpc\/|^server\/(grpc-service|request-limits|interceptors|connection-listener|abandoned-sessions)\.ts$/;

const cases: [what: string, files: string[], forbidden: RegExp][] = [
  ["the client never loads the server", ["client/index.ts"], /^(server|cli)\//],
  [
    "a store loads neither gRPC nor the rest of the server",
    ["server/store/memory-store.ts", "server/store/redis-store.ts"],
    /grpc|^server\/(?!store\/|host-port\.ts$)|^gen\//,
  ],
  ["the watch hub loads no transport", ["server/watch-hub.ts"], TRANSPORT],
  [
    "handlers load no transport",
    ["server/generation-service.ts", "server/health-service.ts", "server/reflection-service.ts"],
    TRANSPORT,
  ],
];

describe("import boundaries", () => {
  test.each(cases)("%s", (_, files, forbidden) => {
    const crossings = files.flatMap((file) =>
      [...loadedBy(file)].filter((spec) => forbidden.test(spec)).map((spec) => `${file} loads ${spec}`),
    );
    expect(crossings).toEqual([]);
  });

  test("the reader of imports follows them, and skips type-only ones", () => {
    expect(loadedBy("server/server.ts")).toContain("@grpc/grpc-js");
    expect(loadedBy("server/server.ts")).toContain("server/store/redis-feed.ts");
    expect(loadedBy("server/server.ts")).toContain("ioredis");
    // rpc/service-definition.ts imports grpc-js's types only.
    expect(runtimeImportsOf("rpc/service-definition.ts")).not.toContain("@grpc/grpc-js");
  });
});
