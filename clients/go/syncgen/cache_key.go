package syncgen

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxCacheKeyLength is djblets' MAX_KEY_SIZE, in code points.
const MaxCacheKeyLength = 240

// Key names the state a synchronizer follows, as djblets' cache_key argument: one part is
// used as is (djblets' string key), two or more are escaped and joined with ':' (djblets'
// sequence key).
type Key []string

// CacheKeyOptions are MakeCacheKey's options.
type CacheKeyOptions struct {
	// Prefix parts are joined in front, where djblets puts the site's domain (and SITE_ROOT):
	// e.g. {"example.com"} or {"example.com", "/subdir/"}. Not escaped.
	Prefix []string
	// HMACKey, when not empty, is djblets' use_encryption: the key becomes the hex HMAC-SHA256 of
	// itself under this secret, so key names reveal nothing. djblets' default secret is the
	// first 16 characters of Django's SECRET_KEY.
	HMACKey []byte
}

// keyEscaper escapes the separator inside the parts of a sequence key: '%' first, then ':'.
var keyEscaper = strings.NewReplacer("%", "%25", ":", "%3A")

// MakeCacheKey builds the cache key djblets' make_cache_key would for the same key and
// settings, so Go, Python and TypeScript services agree on key names:
//
//  1. One part is used as is. Two or more parts escape, in each part, '%' as %25 and ':' as
//     %3A.
//  2. The prefix parts go in front, all joined with ':'. No prefix, no leading colon.
//  3. With an HMAC key, the result is the hex HMAC-SHA256 of the whole key (UTF-8); done.
//  4. Otherwise every character U+0000..U+0020 and U+007F becomes \xNN (lowercase hex).
//  5. A key longer than 240 code points becomes its first 176 code points followed by the
//     hex SHA-256 of the whole key (UTF-8): 240 in all.
//
// Parts must be valid UTF-8, as keys from Python and TypeScript are.
func MakeCacheKey(key Key, options CacheKeyOptions) string {
	parts := make([]string, 0, len(options.Prefix)+len(key))
	parts = append(parts, options.Prefix...)
	if len(key) > 1 {
		for _, part := range key {
			parts = append(parts, keyEscaper.Replace(part))
		}
	} else {
		parts = append(parts, key...)
	}
	joined := strings.Join(parts, ":")
	if len(options.HMACKey) > 0 {
		mac := hmac.New(sha256.New, options.HMACKey)
		mac.Write([]byte(joined))
		return hex.EncodeToString(mac.Sum(nil))
	}
	var escaped strings.Builder
	codePoints := 0
	for _, char := range joined {
		if char <= 0x20 || char == 0x7f {
			fmt.Fprintf(&escaped, `\x%02x`, char)
			codePoints += 4
		} else {
			escaped.WriteRune(char)
			codePoints++
		}
	}
	result := escaped.String()
	if codePoints <= MaxCacheKeyLength {
		return result
	}
	digest := sha256.Sum256([]byte(result))
	suffix := hex.EncodeToString(digest[:])
	cut := 0
	for kept := 0; kept < MaxCacheKeyLength-len(suffix); kept++ {
		_, size := utf8.DecodeRuneInString(result[cut:])
		cut += size
	}
	return result[:cut] + suffix
}
