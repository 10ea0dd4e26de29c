/**
 * Go for the tests, offline: Debian's go (1.19) in GOPATH mode against the packages apt put
 * in /usr/share/gocode (grpc-go, protobuf-go). A workspace is a temporary GOPATH holding a
 * copy of clients/go and test/go under their import paths (syncgen/clients/go/...), so
 * nothing is written into the work tree; Go's build cache stays in its usual place.
 */
import { execFile } from "node:child_process";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
