/** A child process answering one JSON line per command line (e.g. the Python interop agent). */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { withDeadline } from "./deadline.js";

export class LineAgent {
  readonly #child: ChildProcess;
  readonly #answers: string[] = [];
  #waiter: (() => void) | undefined;
  #stderr = "";

  constructor(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
    this.#child = spawn(command, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      this.#answers.push(line);
      this.#waiter?.();
    });
    this.#child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
  }

  /** Sends one command and resolves with its JSON answer. */
  async ask(command: string, ms = 10_000): Promise<Record<string, unknown>> {
    this.#child.stdin?.write(`${command}\n`);
    const line = await withDeadline(
      new Promise<string>((resolve) => {
        const check = (): void => {
          const next = this.#answers.shift();
          if (next !== undefined) {
            this.#waiter = undefined;
            resolve(next);
          }
        };
        this.#waiter = check;
        check();
      }),
      ms,
      `an answer to "${command.slice(0, 40)}" (stderr: ${this.#stderr})`,
    );
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** Ends the agent (closing its stdin) and waits for it to exit. */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = once(this.#child, "exit");
    this.#child.stdin?.end();
    await withDeadline(exited, 10_000, "the agent to exit").catch(() => this.#child.kill("SIGKILL"));
  }
}
