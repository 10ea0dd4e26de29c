/** What the published packages promise users, checked from the files npm would ship. */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, test } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const read = (path: string): Record<string, unknown> => JSON.parse(readFileSync(join(ROOT, path), "utf8"));

describe.each([
  ["syncgen", "package.json", "dist/cli/main.js.map"],
  ["@syncgen/client", "packages/client/package.json", "packages/client/dist/client/index.js.map"],
])("the %s package", (name, manifest, sourceMap) => {
  const pkg = read(manifest);

  test("names its license, which the repository holds", () => {
    expect(pkg.name).toBe(name);
    expect(pkg.license).toBe("Apache-2.0");
    expect(readFileSync(join(ROOT, "LICENSE"), "utf8")).toMatch(/Apache License\s+Version 2\.0, January 2004/);
  });

  test("asks for a Node that can require() it (20.19 on, 22.12 on; not 21 or early 22)", () => {
    expect(pkg.engines).toEqual({ node: "^20.19.0 || >=22.12.0" });
  });

  test("exports its package.json", () => {
    expect((pkg.exports as Record<string, unknown>)["./package.json"]).toBe("./package.json");
  });

  test("ships source maps that carry their sources (src/ is not shipped)", () => {
    expect(existsSync(join(ROOT, sourceMap))).toBe(true);
    const map = read(sourceMap) as { sourcesContent?: unknown[] };
    expect(map.sourcesContent?.length).toBeGreaterThan(0);
  });
});

test("the client package needs the app's grpc-js, not its own", () => {
  const pkg = read("packages/client/package.json");
  expect(pkg.peerDependencies).toEqual({ "@grpc/grpc-js": "^1.10.0" });
  expect(Object.keys(pkg.dependencies as object)).toEqual(["@bufbuild/protobuf"]);
});
