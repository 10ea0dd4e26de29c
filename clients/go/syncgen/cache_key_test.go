package syncgen

import (
	"strings"
	"testing"
)

// djblets' own make_cache_key vectors (djblets/cache/tests/test_backend.py, djblets 6.0), the
// same the TypeScript and Python clients pass.
func TestMakeCacheKeyMatchesDjblets(t *testing.T) {
	site := CacheKeyOptions{Prefix: []string{"example.com"}}
	siteWithRoot := CacheKeyOptions{Prefix: []string{"example.com", "/subdir/"}}
	hmacWith := func(secret string) CacheKeyOptions {
		return CacheKeyOptions{Prefix: []string{"example.com"}, HMACKey: []byte(secret)}
	}
	const defaultHMACKey = "af=y9ydd51a0g#be" // the first 16 characters of djblets' test SECRET_KEY
	const customHMACKey = "0123456789abcdef"
	x := strings.Repeat
	vectors := []struct {
		name     string
		key      Key
		options  CacheKeyOptions
		expected string
	}{
		{"default", Key{"test123"}, site, "example.com:test123"},
		{"with sequence", Key{"test", "123"}, site, "example.com:test:123"},
		{"with sequence escapes", Key{"%test%", "%1:2:3%"}, site, "example.com:%25test%25:%251%3A2%3A3%25"},
		{"with site root", Key{"test123"}, siteWithRoot, "example.com:/subdir/:test123"},
		{"with site root and sequence", Key{"test", ":123"}, siteWithRoot, "example.com:/subdir/:test:%3A123"},
		{"without site", Key{"test123"}, CacheKeyOptions{}, "test123"},
		{"without site and sequence", Key{"test", ":123"}, CacheKeyOptions{}, "test:%3A123"},
		{"one-part sequence is not escaped", Key{"a:b%"}, site, "example.com:a:b%"},
		{"with unicode", Key{"test🥳123"}, site, "example.com:test🥳123"},
		{"with unicode and sequence", Key{":test", "🥳123"}, site, "example.com:%3Atest:🥳123"},
		{"with invalid chars", Key{"test\x00\tkey !\"\x7f"}, site, `example.com:test\x00\x09key\x20!"\x7f`},
		{"with invalid chars and sequence", Key{"t:est\x00\t", "k%ey !\"\x7f"}, site, `example.com:t%3Aest\x00\x09:k%25ey\x20!"\x7f`},
		{"large key at max length", Key{x("x", 228)}, site, "example.com:" + x("x", 228)},
		{"large key at max length, sequence", Key{x("x", 10), x("x", 217)}, site, "example.com:xxxxxxxxxx:" + x("x", 217)},
		{"large key overflow", Key{x("x", 229)}, site, "example.com:" + x("x", 164) + "edf8474a1b91e737ec28252abe7a8aa5604539b239505e8ccad8890a44198c58"},
		{"large key overflow, sequence", Key{x("x", 10), x("x", 218)}, site, "example.com:xxxxxxxxxx:" + x("x", 153) + "c1f6edf6f476acb93b1858f99ee2fbe8dac1907d595c7f9f9d211fe7c46335c1"},
		{"with encryption", Key{"abc123"}, hmacWith(defaultHMACKey), "0a3195ea908f9bd178ab3c67a257ea4e7954e4b67ac240d1c86953953cde3a0b"},
		{"with encryption and sequence", Key{"abc", "123"}, hmacWith(defaultHMACKey), "61f180a36b711a5364235cc13096d237b5b27256be8aa78e723faf1d73237851"},
		{"with encryption and custom key", Key{"abc123"}, hmacWith(customHMACKey), "10c4714f5c6c49045ed25c8da7d04a4be2254fa275fc3b63bdeebe887aee52f9"},
		{"with encryption and custom key and sequence", Key{"abc", "123"}, hmacWith(customHMACKey), "c93f54fcf3063f17a1bb59d74e3ecd146a1154ea0bf7a4a7d95c82e71c56be7e"},
	}
	for _, vector := range vectors {
		if got := MakeCacheKey(vector.key, vector.options); got != vector.expected {
			t.Errorf("%s: MakeCacheKey(%q) = %q; want %q", vector.name, vector.key, got, vector.expected)
		}
	}
}

func TestMakeCacheKeyCountsCodePointsNotBytes(t *testing.T) {
	site := CacheKeyOptions{Prefix: []string{"example.com"}}
	key := strings.Repeat("🎉", 100) + strings.Repeat("x", 128) // 12 + 228 = 240 code points, 528 bytes
	if got := MakeCacheKey(Key{key}, site); got != "example.com:"+key {
		t.Fatalf("a 240-code-point key was changed: %q", got)
	}
	longer := MakeCacheKey(Key{key + "y"}, site)
	if count := len([]rune(longer)); count != MaxCacheKeyLength {
		t.Fatalf("a 241-code-point key became %d code points; want %d", count, MaxCacheKeyLength)
	}
	if !strings.HasPrefix(longer, "example.com:"+strings.Repeat("🎉", 100)+strings.Repeat("x", 64)) {
		t.Fatalf("the shortened key does not keep its first 176 code points: %q", longer)
	}
}
