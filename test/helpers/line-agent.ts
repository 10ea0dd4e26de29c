/** A child process answering one JSON line per command line (e.g. the Python interop agent). */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { Condition, withDeadline } from "./deadline.js";

export class LineAgent {
  readonly #child: ChildProcess;
  readonly #answers: string[] = [];
  readonly #answered = new Condition();
  #stderr = "";

  constructor(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
    this.#child = spawn(command, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      this.#answers.push(line);
      this.#answered.notify();
    });
    this.#child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
  }

  /** Sends one command and resolves with its JSON answer. */
  async ask(command: string, ms = 10_000): Promise<Record<string, unknown>> {
    this.send(command);
    return this.next(ms, `an answer to "${command.slice(0, 40)}"`);
  }

  /** Sends one line. */
  send(line: string): void {
    this.#child.stdin?.write(`${line}\n`);
  }

  /** Resolves with the next JSON line the agent writes (unprompted, or to what was sent). */
  async next(ms = 10_000, what = "a line from the agent"): Promise<Record<string, unknown>> {
    const line = await this.#answered.until(
      () => this.#answers.shift(),
      ms,
      () => `${what} (stderr: ${this.#stderr})`,
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
