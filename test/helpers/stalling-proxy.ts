/**
 * A TCP proxy that can stop forwarding in both directions at once while keeping both
 * connections open: what a peer whose host froze, or a cut network path, looks like.
 */
import { createConnection, createServer, type Socket } from "node:net";
import { parseHostPort } from "../../src/server/host-port.js";

export interface StallingProxy {
  /** HOST:PORT to connect to instead of the target. */
  readonly address: string;
  readonly port: number;
  /** From now on, bytes in either direction are dropped. */
  stall(): void;
  close(): Promise<void>;
}

/** Listens on a free loopback port and forwards every connection to `target` (HOST:PORT). */
export async function stallingProxy(target: string): Promise<StallingProxy> {
  const parsed = parseHostPort(target);
  if ("error" in parsed) throw new Error(`stallingProxy: target ${parsed.error}`);
  const { host, port } = parsed;
  const sockets = new Set<Socket>();
  let stalled = false;
  const server = createServer((inbound) => {
    const outbound = createConnection(port, host);
    for (const [from, to] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      sockets.add(from);
      from.on("data", (chunk) => {
        if (!stalled) to.write(chunk);
      });
      from.on("error", () => {});
      from.on("close", () => to.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const listening = typeof address === "object" && address ? address.port : 0;
  return {
    address: `127.0.0.1:${listening}`,
    port: listening,
    stall: () => {
      stalled = true;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
