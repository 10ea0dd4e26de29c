/**
 * The READMEs' TypeScript examples, as a user would meet them: every ```ts block is
 * type-checked against the published types (`@syncgen/client`, resolved through its
 * package.json's exports to its dist/, in a project of its own under nodenext), and each block that talks to a
 * server on 127.0.0.1:50051 is compiled and run, by plain Node, against a real one. The
 * identifiers the examples leave to the reader's own code (`loadUserFromDatabase`, `db`, ...)
 * are declared here and given stand-ins at run time.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestServer, type TestServer } from "./helpers/test-server.js";

const ROOT = resolve(import.meta.dirname, "..");
const run = promisify(execFile);

/** The READMEs a user reads: the repository's, and the client package's (its npm page). */
const READMES = ["README.md", "packages/client/README.md"];

/** Every ```ts block of the READMEs, with where it starts. */
function readmeBlocks(): { file: string; line: number; code: string }[] {
  const blocks: { file: string; line: number; code: string }[] = [];
  for (const file of READMES) {
    const lines = readFileSync(join(ROOT, file), "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] !== "```ts" && lines[i] !== "```typescript") continue;
      const end = lines.indexOf("```", i + 1);
      if (end === -1) throw new Error(`${file}: the code block at line ${i + 1} is never closed`);
      blocks.push({ file, line: i + 1, code: lines.slice(i + 1, end).join("\n") });
      i = end;
    }
  }
  return blocks;
}

/** The reader's own code the examples call, typed... */
const USER_CODE_TYPES = `
declare function loadUserFromDatabase(id: number): Promise<{ id: number; name: string }>;
declare function reload(generation: bigint): void;
declare const db: { save(user: unknown): Promise<void>; load(id: number): Promise<unknown> };
declare const user: { id: number; name: string };
`;
/** ...and stand-ins for it at run time. */
const USER_CODE = `
Object.assign(globalThis, {
  loadUserFromDatabase: async (id: number) => ({ id, name: "Ada" }),
  reload: () => {},
  db: { save: async () => {}, load: async (id: number) => ({ id }) },
  user: { id: 42, name: "Ada" },
});
`;

const blocks = readmeBlocks();
/** The examples that talk to a server at the address a newcomer runs it on. */
const runnable = blocks.filter((block) => block.code.includes('createGenerationClient("127.0.0.1:50051"'));

describe("the README's TypeScript examples", () => {
  let project: string;
  let ts: TestServer;
  let compileErrors = "";

  beforeAll(async () => {
    ts = await startTestServer();
    project = mkdtempSync(join(tmpdir(), "syncgen-readme-"));
    // `@syncgen/client` resolves as in an app that installed the package: through its exports.
    mkdirSync(join(project, "node_modules", "@types"), { recursive: true });
    mkdirSync(join(project, "node_modules", "@syncgen"), { recursive: true });
    symlinkSync(join(ROOT, "packages", "client"), join(project, "node_modules", "@syncgen", "client"), "dir");
    symlinkSync(join(ROOT, "node_modules", "@types", "node"), join(project, "node_modules", "@types", "node"), "dir");
    writeFileSync(join(project, "package.json"), JSON.stringify({ type: "module" }));
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          module: "nodenext",
          moduleResolution: "nodenext",
          target: "es2022",
          strict: true,
          types: ["node"],
          outDir: "out",
          skipLibCheck: false,
        },
        include: ["*.ts"],
      }),
    );
    writeFileSync(join(project, "user-code-types.d.ts"), USER_CODE_TYPES);
    writeFileSync(join(project, "user-code.ts"), `${USER_CODE}\nexport {};\n`);
    for (const [index, block] of blocks.entries()) {
      const address = block.code.replaceAll('"127.0.0.1:50051"', JSON.stringify(ts.address));
      writeFileSync(join(project, `example-${index}.ts`), `import "./user-code.js";\n${address}\nexport {};\n`);
    }
    // Compiled once (what does not type-check is still emitted, so the runs say their own piece).
    compileErrors = await run(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", project], { timeout: 120_000 }).then(
      () => "",
      (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ""}${error.stderr ?? ""}`,
    );
  }, 120_000);

  afterAll(async () => {
    await ts?.close();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  test("there are examples, and the quick start is among those run", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    expect(runnable.some((block) => block.code.includes("loadUserFromDatabase"))).toBe(true);
  });

  test("every one compiles against the published types", () => {
    // Name the README line of each error: example-N.ts line L is README line blocks[N].line + L - 1.
    const located = compileErrors.replace(/example-(\d+)\.ts\((\d+),/g, (_, index: string, line: string) => {
      const block = blocks[Number(index)];
      return `${block?.file} line ${(block?.line ?? 0) + Number(line) - 1} (`;
    });
    expect(located).toBe("");
  });

  test.each(runnable.map((block) => [`${block.file} line ${block.line}`, block] as const))(
    "the example at %s runs against a real server",
    async (_, block) => {
      const index = blocks.indexOf(block);
      // Rejects on a non-zero exit (an uncaught error) or if it does not end.
      await run(process.execPath, [join(project, "out", `example-${index}.js`)], { cwd: project, timeout: 60_000 });
    },
    60_000,
  );
});
