/**
 * The `syncgen` command: `serve` runs the server; `get`, `bump`, `clear` and `watch` talk to
 * one, for operators and scripts.
 */
import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import {
  Code,
  createGenerationClient,
  type GenerationClient,
  GenerationServiceError,
  type TlsOptions,
} from "../client/index.js";
import { SERVER_SETTINGS } from "../server/config.js";
import {
  ConfigError,
  integer,
  optional,
  readSettings,
  type SettingsTable,
  type SettingTexts,
  text,
} from "../server/settings.js";
import { VERSION } from "../server/version.js";
import { exitOnConfigError } from "./config-errors.js";
import { exitCodeOf, USAGE_ERROR } from "./exit-codes.js";

/** How every client command reaches the server. */
const CONNECTION_SETTINGS = {
  server: {
    flag: "server",
    placeholder: "target",
    env: "SYNCGEN_SERVER",
    description: "the syncgen server: HOST:PORT, or a grpc target such as ipv4:HOST:PORT,HOST:PORT",
    default: "127.0.0.1:50051",
    parse: (target: string) => (target === "" ? { error: "must name a server, not be empty" } : target),
  },
  token: {
    flag: "token",
    placeholder: "token",
    env: "SYNCGEN_TOKEN",
    description: "bearer token (prefer the environment variable)",
    default: "",
    parse: optional(text),
  },
  tlsCa: {
    flag: "tls-ca",
    placeholder: "file",
    env: "SYNCGEN_CLIENT_TLS_CA",
    description: "connect with TLS, trusting this PEM CA",
    default: "",
    parse: optional(text),
  },
  tlsCert: {
    flag: "tls-cert",
    placeholder: "file",
    env: "SYNCGEN_CLIENT_TLS_CERT",
    description: "client certificate (PEM) for mutual TLS",
    default: "",
    parse: optional(text),
  },
  tlsKey: {
    flag: "tls-key",
    placeholder: "file",
    env: "SYNCGEN_CLIENT_TLS_KEY",
    description: "private key (PEM) of --tls-cert",
    default: "",
    parse: optional(text),
  },
  deadlineMs: {
    flag: "deadline-ms",
    placeholder: "ms",
    env: "SYNCGEN_DEADLINE_MS",
    description: "how long a call may take, retries included, before it fails with DEADLINE_EXCEEDED or its last error",
    default: "5000",
    parse: integer(1, 3_600_000),
  },
} as const satisfies SettingsTable;

/** How a client command reaches the server, its files read. */
interface Connection {
  server: string;
  token: string | undefined;
  tls: TlsOptions | undefined;
  deadlineMs: number;
}

/** Reads a PEM file a setting names; a file that cannot be read is a bad setting. */
function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`--${flag}: cannot read ${path}: ${(error as Error).message}`);
  }
}

// Node's HTTP/2 client gives an IP target to TLS as the server name, which Node then warns
// about (DEP0123; grpc/grpc-node#1919, nodejs/node#56189). The certificate is still checked
// against the IP; on a command line the warning only alarms.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  if (String(warning).includes("TLS ServerName to an IP address")) return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

const program = new Command("syncgen")
  .description("syncgen: generation numbers for cache keys, shared by many processes")
  .version(VERSION, "-V, --version", "print the version of syncgen")
  .showHelpAfterError()
  // A missing argument or an unknown flag is a usage error, 2 (commander's own is 1).
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : USAGE_ERROR));

/**
 * Adds a table's settings to `command` as `--flag <value>` options, the environment variable
 * and default in their help; returns the reader of the texts given by flag. Every command
 * then reads its settings the same way: flag, then environment, then default (readSettings).
 */
function addSettings(command: Command, table: SettingsTable): (parsed: Record<string, unknown>) => SettingTexts {
  const options = Object.values(table).map((setting) => {
    const shown = setting.default === "" ? "" : ` (default: ${setting.default})`;
    const option = new Option(
      `--${setting.flag} <${setting.placeholder}>`,
      `${setting.description}; env ${setting.env}${shown}`,
    );
    command.addOption(option);
    return { flag: setting.flag, option };
  });
  return (parsed) => {
    // commander names options in camelCase; the tables are read by flag.
    const flags: Record<string, string> = {};
    for (const { flag, option } of options) {
      const value = parsed[option.attributeName()];
      if (typeof value === "string") flags[flag] = value;
    }
    return flags;
  };
}

const serve = program.command("serve").description("run the server (in-memory store unless a Redis URL is given)");
const serveFlags = addSettings(serve, SERVER_SETTINGS);
serve.action(async (options: Record<string, unknown>) => {
  const { runServer } = await import("./run-server.js");
  await runServer(serveFlags(options));
});

/** The client commands' parsed options: their connection settings, and their own flags. */
type ClientOptions = Record<string, unknown>;

/**
 * A client command: its connection settings are read like the server's; `run` reads them,
 * makes the client, and ends a failed call with its exit code (exit-codes.ts).
 */
function clientCommand(
  name: string,
  description: string,
): {
  command: Command;
  run: (options: ClientOptions, use: (client: GenerationClient) => Promise<void>) => Promise<void>;
} {
  const command = program.command(name).description(description);
  const flags = addSettings(command, CONNECTION_SETTINGS);
  const connection = (parsed: ClientOptions): Promise<Connection> =>
    exitOnConfigError(name, () => {
      const { values } = readSettings(CONNECTION_SETTINGS, flags(parsed), process.env);
      const { server, token, tlsCa, tlsCert, tlsKey, deadlineMs } = values;
      if ((tlsCert === undefined) !== (tlsKey === undefined)) {
        throw new ConfigError("--tls-cert and --tls-key go together: give both for mutual TLS, or neither");
      }
      const tls =
        tlsCa === undefined && tlsCert === undefined
          ? undefined
          : {
              ...(tlsCa !== undefined ? { ca: readPem("tls-ca", tlsCa) } : {}),
              ...(tlsCert !== undefined ? { cert: readPem("tls-cert", tlsCert) } : {}),
              ...(tlsKey !== undefined ? { key: readPem("tls-key", tlsKey) } : {}),
            };
      return { server, token, tls, deadlineMs };
    });
  return { command, run: async (options, use) => withClient(await connection(options), options, use) };
}

// A reader that stops early (`syncgen watch --json | head -1`) closes the pipe: end quietly.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});

/** One line of JSON output: generations as decimal strings, as proto3's JSON writes int64. */
function printJson(value: unknown, stream: NodeJS.WriteStream = process.stdout): void {
  stream.write(`${JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}\n`);
}

/** What get and bump print: the generation, or with --json the key and the generation. */
function printGeneration(options: ClientOptions, key: string, generation: bigint): void {
  if (options.json) printJson({ key, generation });
  else console.log(String(generation));
}

const get = clientCommand("get", "print a key's generation (creating it if absent, unless --peek)");
get.command
  .argument("<key>")
  .option("--peek", "read only: print 0 for an absent key and create nothing")
  .option("--json", 'print {"key":KEY,"generation":"GENERATION"}')
  .action((key: string, options: ClientOptions) =>
    get.run(options, async (client) =>
      printGeneration(options, key, await client.get(key, { peek: options.peek === true })),
    ),
  );

const bump = clientCommand("bump", "advance a key's generation and print the new one");
bump.command
  .argument("<key>")
  .option("--json", 'print {"key":KEY,"generation":"GENERATION"}')
  .action((key: string, options: ClientOptions) =>
    bump.run(options, async (client) => printGeneration(options, key, await client.bump(key))),
  );

const clear = clientCommand("clear", "forget a key: every generation handed out for it becomes stale");
clear.command
  .argument("<key>")
  .option("--json", 'print {"key":KEY,"cleared":true}')
  .action((key: string, options: ClientOptions) =>
    clear.run(options, async (client) => {
      await client.clear(key);
      if (options.json) printJson({ key, cleared: true });
    }),
  );

const watch = clientCommand("watch", "print each key's generation, then every change, as `KEY<TAB>GENERATION` lines");
watch.command
  .argument("<keys...>")
  .option(
    "--json",
    'print every event as a JSON line: {"event":"live"|"changes","changes":[{"key":..,"generation":".."}]}, {"event":"heartbeat"}, {"event":"down","code":..,"message":..,"retryInMs":..}',
  )
  .action(async (keys: string[], options: ClientOptions) => {
    const stop = new AbortController();
    process.once("SIGINT", () => stop.abort());
    process.once("SIGTERM", () => stop.abort());
    await watch.run(options, async (client) => {
      for await (const event of client.watch(keys, { signal: stop.signal })) {
        if (options.json) {
          if (event.type === "down") {
            const { code, message } = event.error;
            printJson({ event: "down", code: Code[code], message, retryInMs: Math.round(event.retryInMs) });
          } else {
            printJson({
              event: event.type,
              ...(event.type === "heartbeat"
                ? {}
                : { changes: event.changes.map(({ key, generation }) => ({ key, generation })) }),
            });
          }
        } else if (event.type === "live" || event.type === "changes") {
          for (const change of event.changes) process.stdout.write(`${change.key}\t${change.generation}\n`);
        } else if (event.type === "down") {
          process.stderr.write(`syncgen: watch interrupted (${event.error.message}); reconnecting\n`);
        }
      }
    });
  });

/** Runs `use` with a client; a failed call ends the process with its code (exit-codes.ts). */
async function withClient(
  flags: Connection,
  options: ClientOptions,
  use: (client: GenerationClient) => Promise<void>,
): Promise<void> {
  const client = createGenerationClient(flags.server, {
    deadlineMs: flags.deadlineMs,
    ...(flags.tls ? { tls: flags.tls } : {}),
    ...(flags.token !== undefined ? { token: flags.token } : {}),
  });
  try {
    await use(client);
  } catch (error) {
    // Only a failed call has a gRPC code; anything else is a bug of ours, and exits 1.
    if (!(error instanceof GenerationServiceError)) throw error;
    if (options.json) printJson({ error: { code: Code[error.code], message: error.message } }, process.stderr);
    else process.stderr.write(`syncgen: ${error.message}\n`);
    process.exitCode = exitCodeOf(error.code);
  } finally {
    client.close();
  }
}

await program.parseAsync(process.argv);
