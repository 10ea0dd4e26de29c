/**
 * @syncgen/client as a service meets it: packed with `npm pack`, installed into an empty app
 * from that tarball beside the app's own @grpc/grpc-js (an older one), with npm offline:
 * everything else comes from npm's cache, which `npm ci` filled (a cache that lacks the
 * app's grpc-js is filled from the registry once). The app type-checks under `nodenext` and
 * `bundler`, runs the package README's quick start and a call with its own grpc-js
 * credentials against a real server (one grpc-js, the app's: the client's is a peer
 * dependency), and `require()`s the package from CommonJS. The install holds only what a
 * client needs.
 */
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestServer, type TestServer } from "./helpers/test-server.js";

const ROOT = resolve(import.meta.dirname, "..");
const TSC = join(ROOT, "node_modules", ".bin", "tsc");
const run = promisify(execFile);

/** The app's own grpc-js: older than the one syncgen is built with, as in the report of the double install. */
const APP_GRPC_JS = "1.13.4";

/** The module resolutions apps use for packages with exports. */
const RESOLUTIONS = ["nodenext", "bundler"] as const;

/** What the app adds: a call with credentials made by its own grpc-js. */
const OWN_CREDENTIALS = `
import { credentials } from "@grpc/grpc-js";
import { createGenerationClient } from "@syncgen/client";

const client = createGenerationClient(process.argv[2] ?? "127.0.0.1:50051", { credentials: credentials.createInsecure() });
console.log(String(await client.bump("app/users/42")));
client.close();
`;

/** The quick start of the package's README (its npm page). */
function packageQuickStart(): string {
  const readme = readFileSync(join(ROOT, "packages", "client", "README.md"), "utf8");
  const code = /```ts\n([\s\S]*?)\n```/.exec(readme)?.[1];
  if (code === undefined) throw new Error("packages/client/README.md has no ```ts block");
  return code;
}

/** Every installed copy of a package under `nodeModules`, nested ones included: path and version. */
function copiesOf(nodeModules: string, name: string): { path: string; version: string }[] {
  const found: { path: string; version: string }[] = [];
  const visit = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const entry of readdirSync(dir)) {
      if (entry.startsWith(".")) continue;
      const packages = entry.startsWith("@")
        ? readdirSync(join(dir, entry)).map((inner) => `${entry}/${inner}`)
        : [entry];
      for (const pkg of packages) {
        const path = join(dir, pkg);
        if (pkg === name) {
          const { version } = JSON.parse(readFileSync(join(path, "package.json"), "utf8")) as { version: string };
          found.push({ path, version });
        }
        visit(join(path, "node_modules"));
      }
    }
  };
  visit(nodeModules);
  return found;
}

/**
 * npm install, offline; once, if npm's cache lacks a package, from the registry. A cache
 * without the app's grpc-js fails offline as ENOTCACHED, or (when npm cannot even read the
 * version's metadata) as an ERESOLVE naming "@grpc/grpc-js@undefined": both fall back.
 */
async function install(app: string): Promise<void> {
  const args = ["install", "--no-audit", "--no-fund", "--ignore-scripts"];
  try {
    await run("npm", [...args, "--offline"], { cwd: app, timeout: 180_000 });
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr);
    if (!stderr.includes("ENOTCACHED") && !stderr.includes("@undefined")) throw error;
    await run("npm", [...args, "--prefer-offline"], { cwd: app, timeout: 180_000 });
  }
}

describe("@syncgen/client installed into a fresh app", () => {
  let dir: string;
  let app: string;
  let ts: TestServer;
  /** What tsc printed for each resolution ("" when it type-checked). */
  const compiled = new Map<string, string>();

  beforeAll(async () => {
    ts = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), "syncgen-app-"));
    const { stdout } = await run("npm", ["pack", "--workspace", "@syncgen/client", "--pack-destination", dir], {
      cwd: ROOT,
      timeout: 60_000,
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
    await install(app);
    writeFileSync(join(app, "quick-start.ts"), `${packageQuickStart()}\nexport {};\n`);
    writeFileSync(join(app, "own-credentials.ts"), OWN_CREDENTIALS);
    writeFileSync(join(app, "require.cjs"), 'console.log(typeof require("@syncgen/client").createGenerationClient);\n');
    // The app's types for Node: installed with grpc-js's protobufjs, or else this repository's.
    if (!existsSync(join(app, "node_modules", "@types", "node"))) {
      mkdirSync(join(app, "node_modules", "@types"), { recursive: true });
      symlinkSync(join(ROOT, "node_modules", "@types", "node"), join(app, "node_modules", "@types", "node"), "dir");
    }
    for (const resolution of RESOLUTIONS) {
      const config = join(app, `tsconfig.${resolution}.json`);
      writeFileSync(
        config,
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
          files: ["quick-start.ts", "own-credentials.ts"],
        }),
      );
      // tsc prints its errors on stdout.
      compiled.set(
        resolution,
        await run(TSC, ["-p", config], { cwd: app, timeout: 120_000 }).then(
          () => "",
          (error: { stdout?: string }) => error.stdout ?? String(error),
        ),
      );
    }
  }, 480_000);

  afterAll(async () => {
    await ts?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("brings only what a client needs, and one grpc-js: the app's", async () => {
    const nodeModules = join(app, "node_modules");
    expect(copiesOf(nodeModules, "@syncgen/client")).toHaveLength(1);
    for (const serverOnly of ["ioredis", "pino", "prom-client", "commander", "cluster-key-slot"]) {
      expect(copiesOf(nodeModules, serverOnly)).toEqual([]);
    }
    expect(copiesOf(nodeModules, "@grpc/grpc-js")).toEqual([
      { path: join(nodeModules, "@grpc", "grpc-js"), version: APP_GRPC_JS },
    ]);
    const { stdout } = await run("du", ["-sk", "--exclude=@types", nodeModules]);
    // grpc-js and protobuf-es alone are about 16 MB; the server's dependencies made it 27.
    expect(Number(stdout.split("\t")[0])).toBeLessThan(20 * 1024);
  });

  test.each(RESOLUTIONS)("type-checks under moduleResolution %s", (resolution) => {
    expect(compiled.get(resolution)).toBe("");
  });

  test("runs the package README's quick start, and a call with the app's own grpc-js credentials", async () => {
    const address = ts.address;
    const quickStart = join(app, "out-nodenext", "quick-start.js");
    writeFileSync(quickStart, readFileSync(quickStart, "utf8").replace('"127.0.0.1:50051"', JSON.stringify(address)));
    await run(process.execPath, [quickStart], { cwd: app, timeout: 60_000 });
    const { stdout } = await run(process.execPath, [join(app, "out-nodenext", "own-credentials.js"), address], {
      cwd: app,
      timeout: 60_000,
    });
    expect(BigInt(stdout.trim())).toBe(await ts.client.get("app/users/42", { peek: true }));
  });

  test("require() works from CommonJS (Node 20.19 and 22.12 on load ES modules so)", async () => {
    const { stdout } = await run(process.execPath, [join(app, "require.cjs")], { cwd: app, timeout: 30_000 });
    expect(stdout.trim()).toBe("function");
  });
});
