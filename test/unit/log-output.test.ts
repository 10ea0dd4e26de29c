import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { createLogger, LogOutput } from "../../src/server/logger.js";
import { cleanupsAfterEach } from "../helpers/cleanups.js";

const cleanups = cleanupsAfterEach();

function tempFile(): { fd: number; path: string } {
  const dir = mkdtempSync(join(tmpdir(), "syncgen-log-"));
  const path = join(dir, "log");
  const fd = openSync(path, "w");
  cleanups.push(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true });
  });
  return { fd, path };
}

describe("LogOutput", () => {
  test("writes every line, in order, by the time flush() resolves", async () => {
    const { fd, path } = tempFile();
    const output = new LogOutput(fd);
    const logger = createLogger("info", output);
    for (let i = 0; i < 5000; i++) logger.info({ event: "n", i }, "line");
    await output.flush();
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(lines.map((line) => (JSON.parse(line) as { i: number }).i)).toEqual(
      Array.from({ length: 5000 }, (_, i) => i),
    );
    expect(output.dropped).toBe(0);
  });

  test("drops and counts what does not fit its buffer, and keeps what does", async () => {
    const { fd, path } = tempFile();
    const output = new LogOutput(fd, 1000);
    // The first write starts at once; the rest wait for it, within 1,000 bytes.
    for (let i = 0; i < 100; i++) output.write(`${String(i).padStart(98, "0")}\n`);
    await output.flush();
    const written = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(written.length + output.dropped).toBe(100);
    expect(output.dropped).toBeGreaterThan(0);
    expect(written.map(Number)).toEqual(written.map((_, i) => i));
  });
});
