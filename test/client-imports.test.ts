/** Importing `@syncgen/client` must load no server code and no server-only dependency. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, test } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("..", import.meta.url));

test("@syncgen/client loads neither src/server, nor ioredis, pino, commander or the CLI", async () => {
  const { stdout, stderr } = await run(
    process.execPath,
    [
      "--import",
      "./test/helpers/record-imports.mjs",
      "--input-type=module",
      "-e",
      "const m = await import('@syncgen/client'); console.log(typeof m.GenerationSynchronizer, typeof m.createGenerationClient);",
    ],
    { cwd: root, timeout: 20_000 },
  );
  expect(stdout.trim()).toBe("function function");
  const loaded = stderr
    .split("\n")
    .filter((line) => line.startsWith("IMPORT "))
    .map((line) => line.slice("IMPORT ".length));
  // The positive control: the hook sees the client and grpc-js being loaded.
  expect(loaded.some((url) => url.endsWith("/packages/client/dist/client/index.js"))).toBe(true);
  expect(loaded.some((url) => url.includes("/node_modules/@grpc/grpc-js/"))).toBe(true);
  const forbidden = loaded.filter((url) =>
    ["/dist/server/", "/dist/cli/", "/node_modules/ioredis/", "/node_modules/pino/", "/node_modules/commander/"].some(
      (part) => url.includes(part),
    ),
  );
  expect(forbidden).toEqual([]);
});
