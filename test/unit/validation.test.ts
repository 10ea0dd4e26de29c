import { describe, expect, test } from "vitest";
import { checkWatchKeys, keyProblem } from "../../src/server/validation.js";

const limits = { maxKeyBytes: 8, maxWatchKeys: 3 };

describe("keyProblem()", () => {
  test.each([
    ["a", undefined],
    ["12345678", undefined],
    ["€€", undefined], // 6 bytes
    ["", "key must not be empty"],
    ["123456789", "key is 9 bytes long; the limit is 8 bytes (server setting --max-key-bytes)"],
    ["€€€", "key is 9 bytes long; the limit is 8 bytes (server setting --max-key-bytes)"],
    ["\ud800", "key is not valid UTF-8"],
  ])("%j -> %s", (key, problem) => {
    expect(keyProblem(key, limits)).toBe(problem);
  });
});

describe("checkWatchKeys()", () => {
  test("removes duplicates before counting", () => {
    expect(checkWatchKeys(["a", "b", "a", "c", "c"], limits)).toEqual({ keys: ["a", "b", "c"] });
  });

  test.each([
    [[], "keys must name at least one key to watch"],
    [["a", "b", "c", "d"], "keys names 4 distinct keys; the limit is 3 per Watch (server setting --max-watch-keys)"],
    [["a", ""], "keys[1] must not be empty"],
  ])("%j -> %s", (keys, problem) => {
    expect(checkWatchKeys(keys, limits)).toEqual({ problem });
  });
});
