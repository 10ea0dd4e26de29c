/**
 * Go for the tests, offline: Debian's go (1.19) in GOPATH mode against the packages apt put
 * in /usr/share/gocode (grpc-go, protobuf-go). A workspace is a temporary GOPATH holding a
 * copy of clients/go and test/go under their import paths (syncgen/clients/go/...), so
 * nothing is written into the work tree; Go's build cache stays in its usual place.
 *
 * Module mode has no proxy here, so a module is built from a vendor/ folder made of the same
 * sources: what `go mod tidy` and `go mod vendor` would give, with each module at the version
 * apt installed. Go checks that vendor/modules.txt agrees with go.mod's requirements.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** Where Debian's golang-*-dev packages install Go sources. */
export const DEBIAN_GOPATH = "/usr/share/gocode";

/** A temporary GOPATH with syncgen's Go code in it. */
export class GoWorkspace {
  private constructor(readonly dir: string) {}

  static async create(): Promise<GoWorkspace> {
    const dir = await mkdtemp(join(tmpdir(), "syncgen-go-"));
    await cp(join(ROOT, "clients", "go"), join(dir, "src", "syncgen", "clients", "go"), { recursive: true });
    await cp(join(ROOT, "test", "go"), join(dir, "src", "syncgen", "test", "go"), { recursive: true });
    return new GoWorkspace(dir);
  }

  /** The environment go runs in: GOPATH mode, this workspace first, no network. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      ...process.env,
      GO111MODULE: "off",
      GOPATH: `${this.dir}:${DEBIAN_GOPATH}`,
      GOFLAGS: "",
      GOPROXY: "off",
      ...extra,
    };
  }

  /** Runs `go args...` in the workspace; rejects (with its output) when it fails. */
  async go(args: string[], options: { env?: NodeJS.ProcessEnv; timeout?: number; cwd?: string } = {}) {
    return promisify(execFile)("go", args, {
      cwd: options.cwd ?? this.dir,
      env: this.env(options.env),
      timeout: options.timeout ?? 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  }

  /** The environment of module mode from a vendor/ folder: no GOPATH packages, no network. */
  moduleEnv(): NodeJS.ProcessEnv {
    return this.env({ GO111MODULE: "on", GOFLAGS: "-mod=vendor", GOPATH: join(this.dir, "module-cache") });
  }

  /**
   * Writes `moduleDir`/vendor: the sources of every package the module's packages (and their
   * tests) import beyond the standard library and the module itself, found as GOPATH mode
   * finds them, and vendor/modules.txt naming each module with its version: apt's for
   * Debian's, go.mod's for one go.mod replaces with a folder. A go.mod of go 1.17 or later
   * must list every such module; each it lacks is added, as `go mod tidy` would.
   */
  async vendor(moduleDir: string): Promise<void> {
    const goMod = JSON.parse(
      (await this.go(["mod", "edit", "-json"], { cwd: moduleDir, env: this.moduleEnv() })).stdout,
    ) as GoModJson;
    const required = new Map((goMod.Require ?? []).map((r) => [r.Path, r.Version]));
    const replaced = new Map((goMod.Replace ?? []).map((r) => [r.Old.Path, r.New.Path]));
    const listing = await this.go(
      ["list", "-deps", "-test", "-f", "{{if not .Standard}}{{.ImportPath}} {{.Dir}}{{end}}", "./..."],
      { cwd: moduleDir },
    );
    const modules = new Map<string, { version: string; go: string; packages: string[] }>();
    for (const line of listing.stdout.split("\n")) {
      const [importPath, dir] = line.split(" ");
      // Blank lines (standard packages), and the module's own packages ("_/abs/path" here).
      if (!importPath || !dir || importPath.startsWith("_")) continue;
      const root = moduleRoot(dir);
      const rootGoMod = await readFile(join(root, "go.mod"), "utf8");
      const path = /^module\s+(\S+)/m.exec(rootGoMod)?.[1] as string;
      if (path === goMod.Module.Path) continue;
      let module = modules.get(path);
      if (module === undefined) {
        const version = replaced.has(path)
          ? `${required.get(path)} => ${replaced.get(path)}`
          : await debianModuleVersion(root);
        module = { version, go: /^go\s+(\S+)/m.exec(rootGoMod)?.[1] ?? "1.11", packages: [] };
        modules.set(path, module);
      }
      module.packages.push(importPath);
      await copyFiles(dir, join(moduleDir, "vendor", importPath));
    }
    const [major, minor] = (goMod.Go ?? "1.16").split(".").map(Number) as [number, number];
    if (major > 1 || minor >= 17) {
      const missing = [...modules].filter(([path]) => !required.has(path));
      for (const [path, { version }] of missing) required.set(path, version);
      if (missing.length > 0) {
        const flags = missing.map(([path, { version }]) => `-require=${path}@${version}`);
        await this.go(["mod", "edit", ...flags], { cwd: moduleDir, env: this.moduleEnv() });
      }
    }
    const lines = [...modules.keys()].sort().flatMap((path) => {
      const { version, go, packages } = modules.get(path) as { version: string; go: string; packages: string[] };
      return [`# ${path} ${version}`, `## ${required.has(path) ? "explicit; " : ""}go ${go}`, ...packages.sort()];
    });
    // Replacements of every version of a module are listed once more, as `go mod vendor` does.
    for (const [path, folder] of replaced) lines.push(`# ${path} => ${folder}`);
    await writeFile(join(moduleDir, "vendor", "modules.txt"), `${lines.join("\n")}\n`);
  }

  /** Builds the package at `importPath` into the workspace's bin/ and returns the binary's path. */
  async build(importPath: string): Promise<string> {
    const output = join(this.dir, "bin", importPath.split("/").at(-1) as string);
    await this.go(["build", "-o", output, importPath]);
    return output;
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** What `go mod edit -json` says of a go.mod. */
interface GoModJson {
  Module: { Path: string };
  Go?: string;
  Require?: { Path: string; Version: string }[];
  Replace?: { Old: { Path: string }; New: { Path: string } }[];
}

/** The folder of the module holding `dir`: the nearest with a go.mod. */
function moduleRoot(dir: string): string {
  for (let at = dir; at !== dirname(at); at = dirname(at)) if (existsSync(join(at, "go.mod"))) return at;
  throw new Error(`no go.mod above ${dir}`);
}

/**
 * The module version of the Debian package that installed `root`: 1:0.7.0+dfsg-1 is v0.7.0.
 * A snapshot (0.0~git20200413.b5235f6) becomes a pseudo-version of that date and commit;
 * Debian keeps only 7 hex digits of it, so the rest is zeros (vendor mode reads it as a label).
 */
async function debianModuleVersion(root: string): Promise<string> {
  const run = promisify(execFile);
  const owner = (await run("dpkg-query", ["-S", root])).stdout.split(":")[0] as string;
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax.
  const debian = (await run("dpkg-query", ["-W", "-f", "${Version}", owner])).stdout;
  const upstream = debian
    .replace(/^\d+:/, "")
    .replace(/-[^-]+$/, "")
    .replace(/\+.*$/, "");
  const snapshot = /^0\.0~git(\d{8})\.([0-9a-f]+)$/.exec(upstream);
  if (snapshot) return `v0.0.0-${snapshot[1]}000000-${(snapshot[2] as string).padEnd(12, "0")}`;
  return `v${upstream}`;
}

/** Copies the files of one package folder (not its subfolders), as vendoring does. */
async function copyFiles(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.isFile()) await cp(join(from, entry.name), join(to, entry.name));
  }
}
