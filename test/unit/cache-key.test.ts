/** djblets' own make_cache_key vectors (djblets/cache/tests/test_backend.py, djblets 6.0). */
import { describe, expect, test } from "vitest";
import { makeCacheKey } from "../../src/client/cache-key.js";

const site = { prefix: "example.com" };
const siteWithRoot = { prefix: ["example.com", "/subdir/"] };
const DEFAULT_HMAC_KEY = "af=y9ydd51a0g#be"; // the first 16 characters of djblets' test SECRET_KEY
const CUSTOM_HMAC_KEY = Buffer.from("0123456789abcdef");

describe("makeCacheKey()", () => {
  test.each<[string, string | string[], object, string]>([
    ["default", "test123", site, "example.com:test123"],
    ["with sequence", ["test", "123"], site, "example.com:test:123"],
    ["with sequence escapes", ["%test%", "%1:2:3%"], site, "example.com:%25test%25:%251%3A2%3A3%25"],
    ["with site root", "test123", siteWithRoot, "example.com:/subdir/:test123"],
    ["with site root and sequence", ["test", ":123"], siteWithRoot, "example.com:/subdir/:test:%3A123"],
    ["without site", "test123", {}, "test123"],
    ["without site and sequence", ["test", ":123"], {}, "test:%3A123"],
    ["one-part sequence is not escaped", ["a:b%"], site, "example.com:a:b%"],
    ["with unicode", "test🥳123", site, "example.com:test🥳123"],
    ["with unicode and sequence", [":test", "🥳123"], site, "example.com:%3Atest:🥳123"],
    ["with invalid chars", 'test\0\tkey !"\x7f', site, 'example.com:test\\x00\\x09key\\x20!"\\x7f'],
    [
      "with invalid chars and sequence",
      ["t:est\0\t", 'k%ey !"\x7f'],
      site,
      'example.com:t%3Aest\\x00\\x09:k%25ey\\x20!"\\x7f',
    ],
    ["large key at max length", "x".repeat(228), site, `example.com:${"x".repeat(228)}`],
    [
      "large key at max length, sequence",
      ["x".repeat(10), "x".repeat(217)],
      site,
      `example.com:xxxxxxxxxx:${"x".repeat(217)}`,
    ],
    [
      "large key overflow",
      "x".repeat(229),
      site,
      `example.com:${"x".repeat(164)}edf8474a1b91e737ec28252abe7a8aa5604539b239505e8ccad8890a44198c58`,
    ],
    [
      "large key overflow, sequence",
      ["x".repeat(10), "x".repeat(218)],
      site,
      `example.com:xxxxxxxxxx:${"x".repeat(153)}c1f6edf6f476acb93b1858f99ee2fbe8dac1907d595c7f9f9d211fe7c46335c1`,
    ],
    [
      "with encryption",
      "abc123",
      { ...site, hmacKey: DEFAULT_HMAC_KEY },
      "0a3195ea908f9bd178ab3c67a257ea4e7954e4b67ac240d1c86953953cde3a0b",
    ],
    [
      "with encryption and sequence",
      ["abc", "123"],
      { ...site, hmacKey: DEFAULT_HMAC_KEY },
      "61f180a36b711a5364235cc13096d237b5b27256be8aa78e723faf1d73237851",
    ],
    [
      "with encryption and custom key",
      "abc123",
      { ...site, hmacKey: CUSTOM_HMAC_KEY },
      "10c4714f5c6c49045ed25c8da7d04a4be2254fa275fc3b63bdeebe887aee52f9",
    ],
    [
      "with encryption and custom key and sequence",
      ["abc", "123"],
      { ...site, hmacKey: CUSTOM_HMAC_KEY },
      "c93f54fcf3063f17a1bb59d74e3ecd146a1154ea0bf7a4a7d95c82e71c56be7e",
    ],
  ])("%s", (_, key, options, expected) => {
    expect(makeCacheKey(key, options)).toBe(expected);
    expect(makeCacheKey(key, options)).toBe(expected);
  });

  test("counts code points, not UTF-16 units: 240 emoji-bearing code points are kept", () => {
    const key = `${"🎉".repeat(100)}${"x".repeat(128)}`; // 12 + 228 = 240 code points, 340 UTF-16 units
    expect(makeCacheKey(key, site)).toBe(`example.com:${key}`);
    const longer = makeCacheKey(`${key}y`, site);
    expect(Array.from(longer)).toHaveLength(240);
    expect(longer.startsWith(`example.com:${"🎉".repeat(100)}${"x".repeat(64)}`)).toBe(true);
  });
});
