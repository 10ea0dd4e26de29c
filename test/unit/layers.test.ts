/**
 * The layers' import boundaries: the client never imports the server; the stores and the
 * watch hub know nothing of gRPC or of the transport adapter; handlers are transport-neutral,
 * so a second transport plugs in beside grpc-service.ts. Read from the source files' imports.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, test } from "vitest";

const SRC = resolve(import.meta.dirname, "../../src");

/** Every .ts file under `dir`, relative to src/. */
function sources(dir: string): string[] {
  return readdirSync(join(SRC, dir), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".ts"))
    .map((name) => join(dir, name));
}

/** What a source file imports: package names, or paths relative to src/ for its own modules. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), "utf8");
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)"/gms)].map(([, spec = ""]) =>
    spec.startsWith(".") ? relative(SRC, resolve(join(SRC, file), "..", spec)) : spec,
  );
}

const cases: [what: string, files: string[], forbidden: RegExp][] = [
  ["the client never imports the server", sources("client"), /^(server|cli)\//],
  [
    "a store imports neither gRPC nor the rest of the server",
    sources("server/store"),
    /grpc|^server\/(?!store\/|host-port)|^gen\//,
  ],
  [
    "the watch hub knows no transport",
    ["server/watch-hub.ts"],
    /grpc|^server\/(grpc-service|request-limits|interceptors)/,
  ],
  [
    "handlers know no transport",
    ["server/handler.ts", "server/generation-service.ts", "server/health-service.ts", "server/reflection-service.ts"],
    /@grpc\/|^server\/(grpc-service|request-limits|interceptors)/,
  ],
];

describe("import boundaries", () => {
  test.each(cases)("%s", (_, files, forbidden) => {
    expect(files.length).toBeGreaterThan(0);
    const crossings = files.flatMap((file) =>
      importsOf(file)
        .filter((spec) => forbidden.test(spec))
        .map((spec) => `${file} -> ${spec}`),
    );
    expect(crossings).toEqual([]);
  });

  test("the reader of imports sees them", () => {
    expect(importsOf("server/server.ts")).toContain("@grpc/grpc-js");
    expect(importsOf("server/server.ts")).toContain("server/watch-hub.js");
  });
});
