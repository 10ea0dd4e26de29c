package syncgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The tests run against real syncgen servers: SYNCGEN_TEST_SERVER is one the test runner
// started (over Redis, in npm test), and SYNCGEN_TEST_CLI (bin/syncgen.js, run with
// SYNCGEN_TEST_NODE) starts servers of the tests' own, for those that stop and restart them.
var (
	testServer = os.Getenv("SYNCGEN_TEST_SERVER")
	testCLI    = os.Getenv("SYNCGEN_TEST_CLI")
	testNode   = envOr("SYNCGEN_TEST_NODE", "node")
)

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// sharedServer is the runner's server, or the test is skipped (npm test fails on a skip).
func sharedServer(t *testing.T) string {
	t.Helper()
	if testServer == "" {
		t.Skip("SYNCGEN_TEST_SERVER is not set")
	}
	return testServer
}

// serveProcess is a `syncgen serve` of the test's own, on the memory store.
type serveProcess struct {
	t       *testing.T
	cmd     *exec.Cmd
	address string
}

// startServe starts `syncgen serve` on address (127.0.0.1:0 for any free port) with flags
// added, waits for its start line, and stops it when the test ends.
func startServe(t *testing.T, address string, flags ...string) *serveProcess {
	t.Helper()
	if testCLI == "" {
		t.Skip("SYNCGEN_TEST_CLI is not set")
	}
	args := append([]string{testCLI, "serve", "--listen", address, "--metrics-listen", ""}, flags...)
	cmd := exec.Command(testNode, args...)
	// The memory store, whatever REDIS_URL the tests run with: a restart starts it empty.
	for _, entry := range os.Environ() {
		if !strings.HasPrefix(entry, "REDIS_URL=") {
			cmd.Env = append(cmd.Env, entry)
		}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	process := &serveProcess{t: t, cmd: cmd}
	t.Cleanup(process.stop)
	started := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			var line struct{ Event, Address string }
			if json.Unmarshal(lines.Bytes(), &line) == nil && line.Event == "start" {
				started <- line.Address
				break
			}
		}
		close(started)
		_, _ = io.Copy(io.Discard, stdout) // keep reading: a full pipe would stall its logging
	}()
	select {
	case bound, ok := <-started:
		if !ok {
			t.Fatalf("syncgen serve %v exited before listening", flags)
		}
		process.address = bound
	case <-time.After(60 * time.Second):
		t.Fatal("syncgen serve did not start within 60 s")
	}
	return process
}

// stop ends the server (SIGTERM, then SIGKILL after 15 s) and waits for it.
func (p *serveProcess) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

// dial makes a client of address, closed when the test ends.
func dial(t *testing.T, address string, options Options) *Client {
	t.Helper()
	client, err := Dial(address, options)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// uniqueKey is a key no other test (or earlier run against the same Redis) uses.
func uniqueKey(t *testing.T) string {
	return fmt.Sprintf("go-test/%s/%d", t.Name(), time.Now().UnixNano())
}

// within is a context for one step of a test: generous, for a busy 2-core machine.
func within(t *testing.T, seconds int) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually waits until condition holds, checking every 10 ms; it fails the test after 30 s.
func eventually(t *testing.T, what string, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
