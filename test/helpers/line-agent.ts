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
  /** Its output is over: it exited and every line it wrote has been read. */
  #ended = false;

  constructor(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
    this.#child = spawn(command, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      this.#answers.push(line);
      this.#answered.notify();
    });
    // Writing to an agent that has exited fails; next() says so, with its stderr.
    this.#child.stdin?.on("error", () => {});
    this.#child.stderr?.on("data", (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    // Whoever waits for an answer learns at once that none will come. ("close", not "exit":
    // it comes after the last line on stdout.)
    this.#child.on("close", () => {
      this.#ended = true;
      this.#answered.notify();
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

  /**
   * Resolves with the next JSON line the agent writes (unprompted, or to what was sent);
   * rejects, with what it wrote on stderr, if it exits with none left to read.
   */
  async next(ms = 10_000, what = "a line from the agent"): Promise<Record<string, unknown>> {
    const line = await this.#answered.until(
      () => {
        const answer = this.#answers.shift();
        if (answer === undefined && this.#ended) {
          const exit = this.#child.exitCode ?? this.#child.signalCode;
          throw new Error(`the agent exited (${exit}) before ${what}; stderr: ${this.#stderr}`);
        }
        return answer;
      },
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
