/** Servers under test as separate processes, so their CPU is not the load generator's. */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { freePort } from "../test/helpers/free-port.js";

const CLI = fileURLToPath(new URL("../bin/syncgen.js", import.meta.url));

/** A `syncgen serve` process. */
export class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly address: string,
  ) {}

  /** Starts `syncgen serve` with `args` on a free port; resolves once its store is ready. */
  static async start(args: string[]): Promise<ServerProcess> {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const child = spawn(process.execPath, [CLI, "serve", "--listen", address, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, REDIS_URL: "" },
    });
    await new Promise<void>((resolve, reject) => {
      let output = "";
      const timer = setTimeout(() => reject(new Error(`syncgen serve did not get ready: ${output}`)), 15_000);
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('"state":"ready"')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => reject(new Error(`syncgen serve exited with ${code}: ${output}`)));
    });
    child.stdout?.resume();
    return new ServerProcess(child, address);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.kill("SIGTERM");
    await exited;
  }
}
