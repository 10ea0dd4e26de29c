/**
 * HOST:PORT, the one form every address in the configuration takes (the gRPC and metrics
 * listeners, Redis Sentinels and Cluster nodes): parsed once, where a setting is read, into a
 * HostPort; written back out by formatHostPort, so an IPv6 host is bracketed the same way in
 * every log line and message.
 */

/** A host (name, IPv4, or IPv6 without brackets) and a TCP port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses HOST:PORT, HOST an IPv6 address in brackets if it has colons; port 0 asks for a free one. */
export function parseHostPort(text: string): HostPort | { error: string } {
  const match = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[2]);
  if (match === null || port > 65535) return { error: `must be HOST:PORT (e.g. 127.0.0.1:50051), not "${text}"` };
  return { host: (match[1] as string).replace(/^\[(.*)\]$/, "$1"), port };
}

/** Parses HOST:PORT,HOST:PORT,... (at least one). */
export function parseHostPortList(text: string): HostPort[] | { error: string } {
  const parsed: HostPort[] = [];
  for (const item of text.split(",")) {
    const hostPort = parseHostPort(item);
    if ("error" in hostPort) return { error: `must be HOST:PORT,HOST:PORT,..., not "${text}"` };
    parsed.push(hostPort);
  }
  return parsed;
}

/** HOST:PORT as a person types it: an IPv6 host in brackets. */
export function formatHostPort({ host, port }: HostPort): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}
