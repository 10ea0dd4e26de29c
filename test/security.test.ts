/**
 * Who gets in: TLS and mutual TLS with certificates made at test time, and bearer tokens
 * from an auth file with read and write prefixes. Real server, real clients (TypeScript and
 * Python), over loopback.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Code } from "../src/client/index.js";
import { defaultServerConfig } from "../src/server/config.js";
import type { Logger } from "../src/server/logger.js";
import { SyncgenServer } from "../src/server/server.js";
import { ConfigError } from "../src/server/settings.js";
import { type Certificates, makeCertificates } from "./helpers/certificates.js";
import { cleanupsAfterEach } from "./helpers/cleanups.js";
import { runCli } from "./helpers/cli.js";
import { expectCode, expectWatchCode } from "./helpers/expect-code.js";
import { healthClient, reflectionClient, serviceNames } from "./helpers/grpc-peers.js";
import { PYTHON, pythonEnv } from "./helpers/python.js";
import { ServeProcess } from "./helpers/serve-process.js";
import { isolatedClient } from "./helpers/test-client.js";
import { startTestServer, type TestServer } from "./helpers/test-server.js";
import { recordWatch } from "./helpers/watch-recorder.js";

const PYTHON_CLIENT = fileURLToPath(new URL("../clients/python", import.meta.url));

let certs: Certificates;
beforeAll(() => {
  certs = makeCertificates();
});
afterAll(() => certs.remove());

const cleanups = cleanupsAfterEach();

/** A server on mutual TLS whose one token, `name`, may read and write keys under `prefix`. */
async function mutualTlsWithToken(name: string, token: string, prefix: string): Promise<TestServer> {
  const authFile = join(certs.dir, `${name}-tokens.json`);
  writeFileSync(authFile, JSON.stringify({ tokens: [{ name, token, read: [prefix], write: [prefix] }] }));
  return startTestServer(
    { authFile, tlsCert: certs.serverCert, tlsKey: certs.serverKey, tlsClientCa: certs.caCert },
    { cleanups },
  );
}

describe("TLS", () => {
  test("serves TLS: a client trusting the CA gets in; a plaintext client does not", async () => {
    const ts = await startTestServer({ tlsCert: certs.serverCert, tlsKey: certs.serverKey }, { cleanups });
    const secure = isolatedClient(cleanups, ts.address, {
      credentials: credentials.createSsl(certs.read(certs.caCert)),
    });
    const generation = await secure.bump("tls/key");
    expect(await secure.get("tls/key")).toBe(generation);
    const plain = isolatedClient(cleanups, ts.address, { deadlineMs: 1000 });
    await expectCode(plain.get("tls/key", { retry: false }), Code.UNAVAILABLE);
  });

  test("mutual TLS refuses a client without a certificate, or with one from another CA", async () => {
    const ts = await startTestServer(
      { tlsCert: certs.serverCert, tlsKey: certs.serverKey, tlsClientCa: certs.caCert },
      { cleanups },
    );
    const ca = certs.read(certs.caCert);
    const withCert = isolatedClient(cleanups, ts.address, {
      tls: { ca, cert: certs.read(certs.clientCert), key: certs.read(certs.clientKey).toString() },
    });
    expect(await withCert.bump("mtls/key")).toBeGreaterThan(0n);
    const noCert = isolatedClient(cleanups, ts.address, { credentials: credentials.createSsl(ca), deadlineMs: 1000 });
    await expectCode(noCert.get("mtls/key", { retry: false }), Code.UNAVAILABLE);
    const stranger = isolatedClient(cleanups, ts.address, {
      credentials: credentials.createSsl(ca, certs.read(certs.strangerKey), certs.read(certs.strangerCert)),
      deadlineMs: 1000,
    });
    await expectCode(stranger.get("mtls/key", { retry: false }), Code.UNAVAILABLE);
  });

  test("a missing certificate file stops startup with a message naming the flag", async () => {
    const config = defaultServerConfig({
      listen: { host: "127.0.0.1", port: 0 },
      tlsCert: join(certs.dir, "nope.pem"),
      tlsKey: certs.serverKey,
    });
    const start = SyncgenServer.start(config, { logger: pino({ level: "silent" }) });
    await expect(start).rejects.toThrow(ConfigError);
    await expect(start).rejects.toThrow(/--tls-cert: cannot read .*nope\.pem/);
  });
});

describe("bearer tokens (--auth-file)", () => {
  const READER = "reader-token-0123456789";
  const WRITER = "writer-token-0123456789";
  const HASHED = "hashed-token-0123456789";
  let authFile: string;
  beforeAll(() => {
    authFile = join(certs.dir, "tokens.json");
    writeFileSync(
      authFile,
      JSON.stringify({
        tokens: [
          { name: "reader", token: READER, read: ["team-a/"] },
          { name: "writer", token: WRITER, read: ["team-a/"], write: ["team-a/"] },
          { name: "everything", sha256: createHash("sha256").update(HASHED).digest("hex"), read: [""], write: [""] },
        ],
      }),
    );
  });

  test("no token, or an unknown one: UNAUTHENTICATED on every RPC", async () => {
    const ts = await startTestServer({ authFile }, { cleanups });
    for (const c of [
      isolatedClient(cleanups, ts.address),
      isolatedClient(cleanups, ts.address, { token: "not-a-token-of-this-server" }),
    ]) {
      for (const call of [c.get("team-a/k"), c.bump("team-a/k"), c.clear("team-a/k")]) {
        await expectCode(call, Code.UNAUTHENTICATED, /token/);
      }
      const watch = recordWatch(cleanups, c, ["team-a/k"]);
      await expectWatchCode(watch, Code.UNAUTHENTICATED);
      expect(watch.responses).toEqual([]);
    }
  });

  test("read and write prefixes: PERMISSION_DENIED outside them, naming the token and the key", async () => {
    const ts = await startTestServer({ authFile }, { cleanups });
    const reader = isolatedClient(cleanups, ts.address, { token: READER });
    const writer = isolatedClient(cleanups, ts.address, { token: WRITER });
    const generation = await writer.bump("team-a/k");
    expect(await reader.get("team-a/k")).toBe(generation);
    await expectCode(
      reader.bump("team-a/k"),
      Code.PERMISSION_DENIED,
      /token "reader" may not write key "team-a\/k"; its write prefixes: none$/,
    );
    await expectCode(
      writer.get("team-b/k"),
      Code.PERMISSION_DENIED,
      /token "writer" may not read key "team-b\/k"; its read prefixes: "team-a\/"/,
    );
    await expectCode(writer.clear("team-b/k"), Code.PERMISSION_DENIED);
    // Nothing was created or changed where the token may not write.
    const everything = isolatedClient(cleanups, ts.address, { token: HASHED });
    expect(await everything.get("team-b/k", { peek: true })).toBe(0n);
  });

  test("a Watch naming one key outside the token's prefixes is refused whole: nothing is sent", async () => {
    const ts = await startTestServer({ authFile }, { cleanups });
    const writer = isolatedClient(cleanups, ts.address, { token: WRITER });
    await writer.bump("team-a/k");
    const watch = recordWatch(cleanups, isolatedClient(cleanups, ts.address, { token: READER }), [
      "team-a/k",
      "team-b/secret",
    ]);
    await expectWatchCode(watch, Code.PERMISSION_DENIED, /"team-b\/secret"/);
    expect(watch.responses).toEqual([]);
    expect(await ts.metric("syncgen_watch_streams")).toBe(0);
    // Within its prefixes the same token watches.
    const allowed = recordWatch(cleanups, isolatedClient(cleanups, ts.address, { token: READER }), ["team-a/k"]);
    await allowed.live();
  });

  test("a token given by its SHA-256 works, and the empty prefix covers every key", async () => {
    const ts = await startTestServer({ authFile }, { cleanups });
    const everything = isolatedClient(cleanups, ts.address, { token: HASHED });
    const generation = await everything.bump("any/key/at/all");
    expect(await everything.get("any/key/at/all")).toBe(generation);
  });

  test("health and reflection stay open without a token", async () => {
    const ts = await startTestServer({ authFile }, { cleanups });
    const health = healthClient(ts.address);
    cleanups.push(() => health.close());
    expect(await health.check("generation.v1.GenerationService")).toBe("SERVING");
    const reflection = reflectionClient(ts.address);
    cleanups.push(() => reflection.close());
    const services = await reflection.ask({ messageRequest: { case: "listServices", value: "" } });
    expect(serviceNames(services)).toContain("generation.v1.GenerationService");
  });

  test("tokens never reach the log, even at debug", async () => {
    const { lines, logger } = capturedLog("debug");
    const { address } = await startTestServer({ authFile }, { logger, cleanups });
    const writer = isolatedClient(cleanups, address, { token: WRITER });
    await writer.bump("team-a/k");
    await expectCode(writer.bump("team-b/k"), Code.PERMISSION_DENIED);
    await expectCode(isolatedClient(cleanups, address, { token: `${READER}x` }).get("team-a/k"), Code.UNAUTHENTICATED);
    await expectCode(isolatedClient(cleanups, address, { token: READER }).bump("team-a/k"), Code.PERMISSION_DENIED);
    expect(lines.some((line) => line.includes('"call_refused"'))).toBe(true);
    expect(lines.some((line) => line.includes('"principal":"reader"'))).toBe(true);
    for (const secret of [READER, WRITER, HASHED]) {
      expect(lines.filter((line) => line.includes(secret))).toEqual([]);
    }
  });

  test("SIGHUP reloads the auth file: a rotated token works at once, a bad file changes nothing", async () => {
    const rotating = join(certs.dir, "rotating-tokens.json");
    const [oldToken, newToken] = ["old-token-0123456789", "new-token-0123456789"];
    const tokens = (token: string) => JSON.stringify({ tokens: [{ name: "app", token, read: [""], write: [""] }] });
    writeFileSync(rotating, tokens(oldToken));
    const { cli: serve, address } = await ServeProcess.start(["--auth-file", rotating], { cleanups });
    expect(await isolatedClient(cleanups, address, { token: oldToken }).bump("rotated")).toBeGreaterThan(0n);

    writeFileSync(rotating, tokens(newToken));
    serve.child.kill("SIGHUP");
    await serve.line((line) => line.includes('"event":"auth_reloaded"'));
    await expectCode(isolatedClient(cleanups, address, { token: oldToken }).bump("rotated"), Code.UNAUTHENTICATED);
    expect(await isolatedClient(cleanups, address, { token: newToken }).bump("rotated")).toBeGreaterThan(0n);

    writeFileSync(rotating, "{ not json");
    serve.child.kill("SIGHUP");
    await serve.line((line) => line.includes('"event":"auth_reload_failed"'));
    expect(await isolatedClient(cleanups, address, { token: newToken }).bump("rotated")).toBeGreaterThan(0n);
    expect(serve.child.exitCode).toBeNull();
  });

  test("without --auth-file the first log line says the server is open", async () => {
    const { lines, logger } = capturedLog("info");
    await startTestServer({}, { logger, cleanups });
    const first = JSON.parse(lines[0] ?? "{}") as { event?: string; auth?: string; msg?: string };
    expect(first.event).toBe("start");
    expect(first.auth).toBe("open");
    expect(first.msg).toMatch(/OPEN: no --auth-file, so every client may read and write every key/);
  });
});

describe("the CLI", () => {
  test.each([
    [["--tls-key", "me-key.pem"], "--tls-cert and --tls-key go together"],
    [["--tls-cert", "me.pem"], "--tls-cert and --tls-key go together"],
    [["--tls-ca", "/nonexistent/ca.pem"], "--tls-ca: cannot read /nonexistent/ca.pem: ENOENT"],
  ])("a client command refuses %j: %s, exit code 2", async (flags, message) => {
    const refused = await runCli(["get", "--server", "127.0.0.1:1", ...flags, "k"]);
    expect(refused.stderr).toContain(`syncgen get: ${message}`);
    expect(refused.code).toBe(2);
  });

  test("get and bump over mutual TLS with a token from the environment", async () => {
    const token = "cli-token-0123456789";
    const ts = await mutualTlsWithToken("cli", token, "cli/");
    const tlsFlags = ["--tls-ca", certs.caCert, "--tls-cert", certs.clientCert, "--tls-key", certs.clientKey];
    const bumped = await runCli(["bump", "--server", ts.address, ...tlsFlags, "cli/key"], { SYNCGEN_TOKEN: token });
    expect(bumped.stderr).toBe("");
    expect(bumped.code).toBe(0);
    const got = await runCli(["get", "--server", ts.address, ...tlsFlags, "cli/key"], { SYNCGEN_TOKEN: token });
    expect(got.stdout.trim()).toBe(bumped.stdout.trim());
    const refused = await runCli(["get", "--server", ts.address, ...tlsFlags, "cli/key"], { SYNCGEN_TOKEN: "" });
    expect(refused.code).toBe(64 + Code.UNAUTHENTICATED);
    expect(refused.stderr).toMatch(/UNAUTHENTICATED: this server requires a token/);
  });
});

describe("the Python client", () => {
  test("talks mutual TLS with a token", async () => {
    const token = "python-token-0123456789";
    const ts = await mutualTlsWithToken("python", token, "py/");
    const script = `
import sys, grpc
from syncgen import SyncgenClient, SyncgenError
address, ca, key, cert, token = sys.argv[1:]
read = lambda path: open(path, "rb").read()
creds = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
client = SyncgenClient(address, credentials=creds, token=token)
bumped = client.bump("py/key")
assert client.get("py/key") == bumped, "get after bump"
try:
    client.bump("elsewhere/key")
    raise SystemExit("bump outside the token's prefixes succeeded")
except SyncgenError as error:
    assert error.code == grpc.StatusCode.PERMISSION_DENIED, error.code
try:
    SyncgenClient(address, credentials=creds).get("py/key")
    raise SystemExit("a call without a token succeeded")
except SyncgenError as error:
    assert error.code == grpc.StatusCode.UNAUTHENTICATED, error.code
print(bumped)
`;
    const { stdout } = await promisify(execFile)(
      PYTHON,
      ["-c", script, ts.address, certs.caCert, certs.clientKey, certs.clientCert, token],
      {
        cwd: PYTHON_CLIENT,
        env: pythonEnv({ PYTHONPATH: PYTHON_CLIENT }),
        timeout: 20_000,
      },
    );
    const bumped = BigInt(stdout.trim());
    const ts2 = isolatedClient(cleanups, ts.address, {
      credentials: credentials.createSsl(
        certs.read(certs.caCert),
        certs.read(certs.clientKey),
        certs.read(certs.clientCert),
      ),
      token,
    });
    expect(await ts2.get("py/key")).toBe(bumped);
  });
});

/** A logger whose lines are kept in `lines`, as the server would write them. */
function capturedLog(level: string): { lines: string[]; logger: Logger } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, logger: pino<never>({ level }, sink) };
}
