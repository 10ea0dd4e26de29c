/** README.md stays true to the code: every server setting is in its table, with its default. */
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { SERVER_SETTINGS } from "../../src/server/config.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

describe("README.md", () => {
  test.each(Object.values(SERVER_SETTINGS).map((setting) => [setting.flag, setting] as const))(
    "documents --%s",
    (_, setting) => {
      const row = readme.split("\n").find((line) => line.startsWith(`| \`--${setting.flag}\` |`));
      expect(row, `a settings-table row for --${setting.flag}`).toBeDefined();
      expect(row).toContain(`\`${setting.env}\``);
      if (setting.default !== "") expect(row).toContain(`\`${setting.default}\``);
    },
  );
});
