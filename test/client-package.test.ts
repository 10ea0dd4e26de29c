/**
 * @syncgen/client as a service meets it: packed with `npm pack`, installed into an empty app
 * from that tarball (everything else from npm's cache, or its registry the first time) beside
 * the app's own @grpc/grpc-js, an older one; the app type-checks under `nodenext` and
 * `bundler`, runs against a real server passing its own grpc-js credentials (one grpc-js, the
 * app's: the client's is a peer dependency), and `require()`s the package from CommonJS. The
 * install holds only what a client needs.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestServer, type TestServer } from "./helpers/test-server.js";

const ROOT = resolve(import.meta.dirname, "..");
const TSC = join(ROOT, "node_modules", ".bin", "tsc");
const run = promisify(execFile);

/** The app's own grpc-js: older than the one syncgen is built with, as in the report that found the double install. */
const APP_GRPC_JS = "1.13.4";

/** The module resolutions apps use for packages with exports. */
const RESOLUTIONS = ["nodenext", "bundler"] as const;

/** What the app does: the quick start, with the app's own credentials object. */
const APP = `
import { credentials } from "@grpc/grpc-js";
import { createGenerationClient, GenerationSynchronizer } from "@syncgen/client";

const client = createGenerationClient(process.argv[2] ?? "127.0.0.1:50051", { credentials: credentials.createInsecure() });
const sync = await GenerationSynchronizer.create(client, "app/users/42");
const before = sync.syncGen;
const bumped = await client.bump(sync.cacheKey);
const expired = await sync.isExpired();
sync.close();
client.close();
console.log(JSON.stringify({ before: String(before), bumped: String(bumped), expired }));
`;

/** Every package directory under node_modules (scoped ones as @scope/name). */
function packagesIn(nodeModules: string): string[] {
  return readdirSync(nodeModules).flatMap((name) => {
    if (name.startsWith(".")) return [];
    if (!name.startsWith("@")) return [name];
    return readdirSync(join(nodeModules, name)).map((inner) => `${name}/${inner}`);
  });
}

describe("@syncgen/client installed into a fresh app", () => {
  let dir: string;
  let app: string;
  let ts: TestServer;

  beforeAll(async () => {
    ts = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), "syncgen-app-"));
    const { stdout } = await run("npm", ["pack", "--workspace", "@syncgen/client", "--pack-destination", dir], {
      cwd: ROOT,
      timeout: 120_000,
    });
    const tarball = stdout.trim().split("\n").at(-1) as string;
    app = join(dir, "app");
    mkdirSync(app);
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({
        name: "app",
        private: true,
        type: "module",
        dependencies: { "@syncgen/client": `file:../${tarball}`, "@grpc/grpc-js": APP_GRPC_JS },
      }),
    );
    await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"], {
      cwd: app,
      timeout: 300_000,
    });
    writeFileSync(join(app, "index.ts"), APP);
    // The app's types for Node: installed with grpc-js's protobufjs, or else this repository's.
    if (!existsSync(join(app, "node_modules", "@types", "node"))) {
      mkdirSync(join(app, "node_modules", "@types"), { recursive: true });
      symlinkSync(join(ROOT, "node_modules", "@types", "node"), join(app, "node_modules", "@types", "node"), "dir");
    }
    for (const resolution of RESOLUTIONS) {
      writeFileSync(
        join(app, `tsconfig.${resolution}.json`),
        JSON.stringify({
          compilerOptions: {
            module: resolution === "nodenext" ? "nodenext" : "esnext",
            moduleResolution: resolution,
            target: "es2022",
            strict: true,
            types: ["node"],
            skipLibCheck: false,
            outDir: `out-${resolution}`,
          },
          files: ["index.ts"],
        }),
      );
    }
    writeFileSync(join(app, "require.cjs"), 'console.log(typeof require("@syncgen/client").createGenerationClient);\n');
  }, 300_000);

  afterAll(async () => {
    await ts?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("brings only what a client needs: no server dependency, one grpc-js (the app's)", async () => {
    const installed = packagesIn(join(app, "node_modules"));
    expect(installed).toContain("@syncgen/client");
    for (const serverOnly of ["ioredis", "pino", "prom-client", "commander", "cluster-key-slot"]) {
      expect(installed).not.toContain(serverOnly);
    }
    expect(readdirSync(join(app, "node_modules", "@syncgen", "client"))).not.toContain("node_modules");
    const { stdout } = await run("du", ["-sk", join(app, "node_modules")]);
    const kib = Number(stdout.split("\t")[0]);
    // grpc-js and protobuf-es alone are about 16 MB; the server's dependencies made it 27.
    expect(kib).toBeLessThan(20 * 1024);
  });

  test.each(RESOLUTIONS)("type-checks under moduleResolution %s", async (resolution) => {
    await expect(
      run(TSC, ["-p", join(app, `tsconfig.${resolution}.json`)], { cwd: app, timeout: 120_000 }),
    ).resolves.toBeDefined();
  });

  test("runs against a real server with the app's own grpc-js credentials", async () => {
    await run(TSC, ["-p", join(app, "tsconfig.nodenext.json")], { cwd: app, timeout: 120_000 });
    const { stdout } = await run(process.execPath, [join(app, "out-nodenext", "index.js"), ts.address], {
      cwd: app,
      timeout: 60_000,
    });
    const result = JSON.parse(stdout) as { before: string; bumped: string; expired: boolean };
    expect(BigInt(result.bumped)).toBeGreaterThan(BigInt(result.before));
    expect(result.expired).toBe(true);
  });

  test("require() works from CommonJS (Node 20.19 and later load ES modules so)", async () => {
    const { stdout } = await run(process.execPath, [join(app, "require.cjs")], { cwd: app, timeout: 30_000 });
    expect(stdout.trim()).toBe("function");
  });
});
