import calculateSlot from "cluster-key-slot";
import { describe, expect, test } from "vitest";
import { RedisKeys } from "../../src/server/store/redis-keys.js";

describe("RedisKeys", () => {
  const keys = new RedisKeys("syncgen:");

  test("tags a key with itself, so its record and channel share a slot", () => {
    expect(keys.record("users/42")).toBe("syncgen:gen:{users/42}");
    expect(keys.channel("users/42")).toBe("syncgen:chg:{users/42}");
  });

  test.each(["users/42", "a{b}", "}", "{", "{}", "x}y{z", "€ 🙂", "__proto__", "a".repeat(1024)])(
    "record and channel of %j hash to one slot, and names differ from every other key",
    (key) => {
      expect(calculateSlot(keys.record(key))).toBe(calculateSlot(keys.channel(key)));
      expect(keys.record(key)).not.toBe(keys.record(`${key}x`));
    },
  );

  test("keys with braces get distinct names", () => {
    const names = new Set(["a{b}", "a{b}}", "{a}b", "#", `{#${"0".repeat(40)}}`].map((key) => keys.record(key)));
    expect(names.size).toBe(5);
  });
});
