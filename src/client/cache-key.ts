/**
 * djblets' `make_cache_key`, exactly, so a TypeScript service and a Python service using
 * djblets agree on key names:
 *
 * 1. A string is one part, as is. A sequence of two or more parts escapes, in each part,
 *    `%` as `%25` and then `:` as `%3A`; a one-part sequence is used as is.
 * 2. The prefix parts (djblets' site domain, and SITE_ROOT when set) go in front, all joined
 *    with `:`. No prefix, no leading colon.
 * 3. HMAC mode: the result is the hex HMAC-SHA256 of the whole key (UTF-8); done.
 * 4. Otherwise every character U+0000..U+0020 and U+007F becomes `\xNN` (lowercase hex).
 * 5. A key longer than 240 code points (not UTF-16 units) becomes its first 176 code points
 *    followed by the hex SHA-256 of the whole key (UTF-8): 240 in all.
 */
import { createHash, createHmac } from "node:crypto";

/** djblets' MAX_KEY_SIZE, in code points. */
export const MAX_CACHE_KEY_LENGTH = 240;

/** Options of makeCacheKey. */
export interface CacheKeyOptions {
  /**
   * Parts joined in front, where djblets puts the site's domain (and SITE_ROOT):
   * e.g. `"example.com"` or `["example.com", "/subdir/"]`. Not escaped.
   */
  prefix?: string | readonly string[];
  /**
   * HMAC mode (djblets' `use_encryption`): the key becomes the hex HMAC-SHA256 of itself
   * under this secret, so key names reveal nothing. djblets' default secret is the first
   * 16 characters of Django's SECRET_KEY.
   */
  hmacKey?: string | Uint8Array;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point (djblets' rule).
const INVALID_KEY_CHARS = /[\x00-\x20\x7f]/g;

/** Builds the cache key djblets' make_cache_key would for the same key and settings. */
export function makeCacheKey(key: string | readonly string[], options: CacheKeyOptions = {}): string {
  const parts =
    typeof key === "string"
      ? [key]
      : key.length > 1
        ? key.map((part) => part.replaceAll("%", "%25").replaceAll(":", "%3A"))
        : [...key];
  const prefix =
    options.prefix === undefined ? [] : typeof options.prefix === "string" ? [options.prefix] : options.prefix;
  const joined = [...prefix, ...parts].join(":");
  if (options.hmacKey !== undefined) {
    return createHmac("sha256", options.hmacKey).update(joined, "utf8").digest("hex");
  }
  const escaped = joined.replace(INVALID_KEY_CHARS, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, "0")}`);
  const codePoints = Array.from(escaped);
  if (codePoints.length <= MAX_CACHE_KEY_LENGTH) return escaped;
  const digest = createHash("sha256").update(escaped, "utf8").digest("hex");
  return codePoints.slice(0, MAX_CACHE_KEY_LENGTH - digest.length).join("") + digest;
}
