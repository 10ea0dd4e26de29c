import { createHash } from "node:crypto";
import { describe, expect, test } from "vitest";
import { Code, GenerationServiceError } from "../../src/rpc/generation-service-error.js";
import { AccessControl } from "../../src/server/access-control.js";
import { ConfigError } from "../../src/server/settings.js";

const TOKEN = "a-token-of-sixteen+";

function control(tokens: unknown[]): AccessControl {
  return AccessControl.parse(JSON.stringify({ tokens }), "tokens.json");
}

function codeOf(thunk: () => unknown): Code | undefined {
  try {
    thunk();
  } catch (error) {
    if (error instanceof GenerationServiceError) return error.code;
    throw error;
  }
  return undefined;
}

describe("AccessControl", () => {
  test.each([
    ["{", /not valid JSON/],
    ["{}", /expected \{"tokens": \[ ... \]\}/],
    [JSON.stringify({ tokens: [{ token: TOKEN, read: [""] }] }), /tokens\[0\]\.name must be a non-empty string/],
    [JSON.stringify({ tokens: [{ name: "a", token: TOKEN }] }), /\("a"\) grants nothing/],
    [JSON.stringify({ tokens: [{ name: "a", token: "short", read: [""] }] }), /at least 16 characters/],
    [JSON.stringify({ tokens: [{ name: "a", read: [""] }] }), /exactly one of "token" and "sha256"/],
    [JSON.stringify({ tokens: [{ name: "a", sha256: "beef", read: [""] }] }), /"sha256" must be 64 hex digits/],
    [JSON.stringify({ tokens: [{ name: "a", token: TOKEN, read: "x/" }] }), /tokens\[0\]\.read must be a list/],
    [
      JSON.stringify({
        tokens: [
          { name: "a", token: TOKEN, read: [""] },
          { name: "a", token: `${TOKEN}2`, read: [""] },
        ],
      }),
      /tokens\[1\]\.name "a" is used twice/,
    ],
    [JSON.stringify({ tokens: [{ name: "a", token: "has a space in it!", read: [""] }] }), /without spaces/],
    [
      JSON.stringify({
        tokens: [
          { name: "a", token: TOKEN, read: [""] },
          { name: "b", token: TOKEN, write: [""] },
        ],
      }),
      /tokens\[1\] \("b"\) has the same token as an earlier entry/,
    ],
  ])("refuses the auth file %s", (text, message) => {
    expect(() => AccessControl.parse(text, "tokens.json")).toThrow(ConfigError);
    expect(() => AccessControl.parse(text, "tokens.json")).toThrow(message);
  });

  test("a file that is not JSON is refused without quoting it (it may hold tokens)", () => {
    const text = `{"tokens": [{"name": "a", "token": ${TOKEN}}]}`;
    expect(() => AccessControl.parse(text, "tokens.json")).toThrow(/^auth file tokens\.json: not valid JSON \(/);
    try {
      AccessControl.parse(text, "tokens.json");
    } catch (error) {
      expect(String(error)).not.toContain(TOKEN.slice(0, 6));
    }
  });

  test("authenticates Bearer tokens, given as themselves or by SHA-256", () => {
    const hashed = "another-token-of-16+";
    const table = control([
      { name: "plain", token: TOKEN, read: ["a/"] },
      { name: "hashed", sha256: createHash("sha256").update(hashed).digest("hex"), write: ["b/"] },
    ]);
    expect(table.authenticate([`Bearer ${TOKEN}`]).name).toBe("plain");
    expect(table.authenticate([`bearer ${hashed}`]).name).toBe("hashed");
    for (const values of [
      [],
      [TOKEN],
      [`Basic ${TOKEN}`],
      [`Bearer ${TOKEN}x`],
      [`Bearer ${TOKEN}`, `Bearer ${TOKEN}`],
    ]) {
      expect(codeOf(() => table.authenticate(values))).toBe(Code.UNAUTHENTICATED);
    }
  });

  test("authorizes by prefix, per permission, every key or none", () => {
    const table = control([{ name: "t", token: TOKEN, read: ["a/", "b/"], write: ["a/"] }]);
    const principal = table.authenticate([`Bearer ${TOKEN}`]);
    expect(codeOf(() => table.authorize(principal, "read", ["a/1", "b/2"]))).toBeUndefined();
    expect(codeOf(() => table.authorize(principal, "write", ["a/1"]))).toBeUndefined();
    expect(codeOf(() => table.authorize(principal, "write", ["b/2"]))).toBe(Code.PERMISSION_DENIED);
    expect(codeOf(() => table.authorize(principal, "read", ["a/1", "c/3"]))).toBe(Code.PERMISSION_DENIED);
    expect(() => table.authorize(principal, "read", ["c/1", "c/2", "a/1"])).toThrow(
      'token "t" may not read 2 of the keys, e.g. "c/1"; its read prefixes: "a/", "b/"',
    );
  });
});
