/**
 * The `syncgen` command: `serve` runs the server; `get`, `bump`, `clear` and `watch` talk to
 * one, for operators and scripts.
 */
import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { Code, createGenerationClient, GenerationServiceError } from "../client/index.js";
import { SETTINGS } from "../server/config.js";

const DEFAULT_SERVER = "127.0.0.1:50051";

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
  .showHelpAfterError();

const serve = program.command("serve").description("run the server (in-memory store unless a Redis URL is given)");
// Flags, environment variables and defaults come from one table (src/server/config.ts).
const serveOptions = SETTINGS.map((setting) => {
  const shown = setting.default === undefined ? "" : ` (default: ${setting.default})`;
  const option = new Option(`--${setting.flag} <value>`, `${setting.description}; env ${setting.env}${shown}`);
  serve.addOption(option);
  return { flag: setting.flag, option };
});
serve.action(async (options: Record<string, string | undefined>) => {
  // commander names options in camelCase; the settings table is keyed by flag.
  const flags: Record<string, string> = {};
  for (const { flag, option } of serveOptions) {
    const value = options[option.attributeName()];
    if (value !== undefined) flags[flag] = value;
  }
  const { runServer } = await import("./run-server.js");
  await runServer(flags);
});

/** How every client command reaches the server. */
interface ConnectionFlags {
  server: string;
  token?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** Adds the connection options every client command takes. */
function clientCommand(name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .addOption(
      new Option(
        "--server <target>",
        "the syncgen server: HOST:PORT, or a grpc target such as ipv4:HOST:PORT,HOST:PORT",
      )
        .env("SYNCGEN_SERVER")
        .default(DEFAULT_SERVER),
    )
    .addOption(new Option("--token <token>", "bearer token (prefer the environment variable)").env("SYNCGEN_TOKEN"))
    .addOption(new Option("--tls-ca <file>", "connect with TLS, trusting this PEM CA").env("SYNCGEN_CLIENT_TLS_CA"))
    .addOption(
      new Option("--tls-cert <file>", "client certificate (PEM) for mutual TLS").env("SYNCGEN_CLIENT_TLS_CERT"),
    )
    .addOption(new Option("--tls-key <file>", "private key (PEM) of --tls-cert").env("SYNCGEN_CLIENT_TLS_KEY"));
}

clientCommand("get", "print a key's generation (creating it if absent, unless --peek)")
  .argument("<key>")
  .option("--peek", "read only: print 0 for an absent key and create nothing")
  .action(async (key: string, options: ConnectionFlags & { peek?: boolean }) => {
    await withClient(options, async (client) => {
      console.log(String(await client.get(key, { peek: options.peek ?? false })));
    });
  });

clientCommand("bump", "advance a key's generation and print the new one")
  .argument("<key>")
  .action(async (key: string, options: ConnectionFlags) => {
    await withClient(options, async (client) => console.log(String(await client.bump(key))));
  });

clientCommand("clear", "forget a key: every generation handed out for it becomes stale")
  .argument("<key>")
  .action(async (key: string, options: ConnectionFlags) => {
    await withClient(options, (client) => client.clear(key));
  });

clientCommand("watch", "print each key's generation, then every change, as `KEY<TAB>GENERATION` lines")
  .argument("<keys...>")
  .action(async (keys: string[], options: ConnectionFlags) => {
    const stop = new AbortController();
    process.once("SIGINT", () => stop.abort());
    process.once("SIGTERM", () => stop.abort());
    await withClient(options, async (client) => {
      for await (const event of client.watch(keys, { signal: stop.signal })) {
        if (event.type === "live" || event.type === "changes") {
          for (const change of event.changes) process.stdout.write(`${change.key}\t${change.generation}\n`);
        } else if (event.type === "down") {
          process.stderr.write(`syncgen: watch interrupted (${event.error.message}); reconnecting\n`);
        }
      }
    });
  });

async function withClient(
  flags: ConnectionFlags,
  use: (client: ReturnType<typeof createGenerationClient>) => Promise<void>,
): Promise<void> {
  const tls =
    flags.tlsCa !== undefined || flags.tlsCert !== undefined
      ? {
          ...(flags.tlsCa !== undefined ? { ca: readFileSync(flags.tlsCa) } : {}),
          ...(flags.tlsCert !== undefined ? { cert: readFileSync(flags.tlsCert) } : {}),
          ...(flags.tlsKey !== undefined ? { key: readFileSync(flags.tlsKey) } : {}),
        }
      : undefined;
  const client = createGenerationClient(flags.server, {
    ...(tls ? { tls } : {}),
    ...(flags.token !== undefined ? { token: flags.token } : {}),
  });
  try {
    await use(client);
  } catch (error) {
    const failure = GenerationServiceError.from(error);
    process.stderr.write(`syncgen: ${failure.message}\n`);
    process.exitCode = failure.code === Code.INVALID_ARGUMENT ? 2 : 1;
  } finally {
    client.close();
  }
}

await program.parseAsync(process.argv);
