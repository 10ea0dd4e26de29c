// A Go synchronizer driven line by line over stdin, for the cross-language tests: the same
// commands as clients/python/tests/interop_agent.py, each answered by one JSON line.
//
//	watch JSON          a watch-mode synchronizer of the key (a string or a list of parts)
//	await_live          until its shared stream is live
//	await_watched GEN   until its stream reports GEN (as OnExpired tells it)
//	is_expired | mark_updated | refresh | sync_gen
//	make_cache_key JSON the cache keys of a list of keys
//
// Usage: interop-agent SERVER PREFIX
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"syncgen/clients/go/syncgen"
)

// deadline bounds each command that waits: generous, for a busy machine.
const deadline = 30 * time.Second

type agent struct {
	client  *syncgen.Client
	options syncgen.CacheKeyOptions
	sync    *syncgen.Synchronizer
	told    chan int64
}

func main() {
	client, err := syncgen.Dial(os.Args[1], syncgen.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()
	a := &agent{client: client, options: syncgen.CacheKeyOptions{Prefix: []string{os.Args[2]}}, told: make(chan int64, 100)}
	lines := bufio.NewScanner(os.Stdin)
	lines.Buffer(make([]byte, 1<<20), 16<<20)
	output := json.NewEncoder(os.Stdout)
	for lines.Scan() {
		command, argument, _ := strings.Cut(lines.Text(), " ")
		answer, err := a.do(command, argument)
		if err != nil {
			answer = map[string]interface{}{"error": err.Error()}
		}
		if err := output.Encode(answer); err != nil {
			os.Exit(1)
		}
	}
	if a.sync != nil {
		a.sync.Close()
	}
}

func (a *agent) do(command, argument string) (map[string]interface{}, error) {
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	switch command {
	case "watch":
		key, err := parseKey([]byte(argument))
		if err != nil {
			return nil, err
		}
		a.sync, err = syncgen.NewSynchronizer(ctx, a.client, key, &syncgen.SynchronizerOptions{CacheKey: a.options, Watch: true})
		if err != nil {
			return nil, err
		}
		a.sync.OnExpired(func(generation int64) { a.told <- generation })
		return map[string]interface{}{"cache_key": a.sync.CacheKey(), "sync_gen": a.syncGen()}, nil
	case "await_live":
		for !a.sync.Live() {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("not live within %v", deadline)
			case <-time.After(10 * time.Millisecond):
			}
		}
		return map[string]interface{}{"live": true}, nil
	case "await_watched":
		want, err := strconv.ParseInt(argument, 10, 64)
		if err != nil {
			return nil, err
		}
		var seen []int64
		for {
			select {
			case generation := <-a.told:
				if generation == want {
					return map[string]interface{}{"watched": argument, "is_expired": a.sync.IsExpired(ctx)}, nil
				}
				seen = append(seen, generation)
			case <-ctx.Done():
				return nil, fmt.Errorf("not told %d within %v; told %v", want, deadline, seen)
			}
		}
	case "is_expired":
		return map[string]interface{}{"is_expired": a.sync.IsExpired(ctx)}, nil
	case "mark_updated":
		a.sync.MarkUpdated(ctx)
		return map[string]interface{}{"sync_gen": a.syncGen()}, nil
	case "refresh":
		a.sync.Refresh(ctx)
		return map[string]interface{}{"sync_gen": a.syncGen()}, nil
	case "sync_gen":
		return map[string]interface{}{"sync_gen": a.syncGen()}, nil
	case "make_cache_key":
		var keys []json.RawMessage
		if err := json.Unmarshal([]byte(argument), &keys); err != nil {
			return nil, err
		}
		names := make([]string, 0, len(keys))
		for _, raw := range keys {
			key, err := parseKey(raw)
			if err != nil {
				return nil, err
			}
			names = append(names, syncgen.MakeCacheKey(key, a.options))
		}
		return map[string]interface{}{"keys": names}, nil
	}
	return nil, fmt.Errorf("unknown command %q", command)
}

// syncGen as the other agents give it: a decimal string.
func (a *agent) syncGen() string { return strconv.FormatInt(a.sync.SyncGen(), 10) }

// parseKey reads a key as the tests write it: a JSON string (one part) or a list of parts.
func parseKey(raw []byte) (syncgen.Key, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return syncgen.Key{one}, nil
	}
	var parts []string
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, fmt.Errorf("a key is a string or a list of strings: %s", raw)
	}
	return parts, nil
}
