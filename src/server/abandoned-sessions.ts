/**
 * Connections Node has given up on, closed at once.
 *
 * Node's HTTP/2 (nghttp2's rapid-reset limit: a burst of 1,000 stream resets, then 33 a
 * second) answers a client that resets too many streams with GOAWAY and stops reading its
 * socket, without telling JavaScript: no session event, no close. grpc-js then keeps the
 * socket, its unread data and every call still open on it until keepalive gives up (80 s by
 * default), and many such clients add up. Well-behaved clients get there too: a client that
 * cancels a thousand calls quickly (watch-mode synchronizers coming and going) is cut off the
 * same way. So every session is watched:
 *
 * - the streams the client cancels are counted against the same budget as nghttp2's, and the
 *   session is destroyed the moment it runs out, so the client reconnects at once. Our count
 *   can lag nghttp2's (it sees frames before JavaScript sees the streams close), so a session
 *   close to the end of its budget is asked to answer a PING at once, within 2 s;
 * - a session that has received anything since its last answered PING is pinged every 5 s,
 *   and one that does not answer within the keepalive timeout is not being read: it is
 *   destroyed too. This catches what the budget cannot see (resets of streams already closed).
 *
 * A PING's timer may fire late when this process was busy; answers already received are read
 * (one turn of the event loop) before a session is judged.
 */
import {
  constants,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Stream,
} from "node:http2";

/** nghttp2's stream reset limit (NGHTTP2_DEFAULT_STREAM_RESET_BURST and _RATE). */
const RESET_BURST = 1000;
const RESETS_PER_SECOND = 33;
/** Below this many resets left, the session is probed at once. */
const RESETS_LEFT_TO_PROBE = RESET_BURST / 10;
/** How often a session that received anything is asked to answer a PING. */
const PROBE_INTERVAL_MS = 5000;
/** How long a PING may go unanswered near the end of the reset budget (routinely: the keepalive timeout). */
const SUSPECT_PROBE_TIMEOUT_MS = 2000;
/** A PING's answer as read off the socket: frame header and 8 bytes of data. */
const PING_ACK_BYTES = 9 + 8;

/** Called when a session is destroyed, with why (for the log). */
export type AbandonedObserver = (reason: string) => void;

/**
 * The HTTP/2 server grpc-js made for the connection injector it created last (grpc-js 1.14
 * keeps them in the private `http2Servers` map; no public API reaches a session). Undefined
 * if grpc-js has changed shape: then dead connections last until keepalive.
 */
export function injectorHttp2Server(grpcServer: object): Http2Server | undefined {
  const servers = (grpcServer as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) return undefined;
  const last = [...servers.keys()].at(-1) as { on?: unknown } | undefined;
  return typeof last?.on === "function" ? (last as Http2Server) : undefined;
}

/**
 * Watches every session of `http2Server` and destroys those Node has stopped reading;
 * `probeTimeoutMs` is how long a routine PING may go unanswered (the keepalive timeout).
 */
export function closeAbandonedSessions(
  http2Server: Http2Server | Http2SecureServer,
  probeTimeoutMs: number,
  onClosed: AbandonedObserver,
): void {
  http2Server.on("session", (session: Http2Session) => watchSession(session, probeTimeoutMs, onClosed));
}

function watchSession(session: Http2Session, probeTimeoutMs: number, onClosed: AbandonedObserver): void {
  let tokens = RESET_BURST;
  /** nghttp2 refills in whole seconds of the wall clock. */
  let refilledAtSecond = Math.floor(Date.now() / 1000);
  /** Bytes read when the last answered PING went out, plus its answer. */
  let readWhenAnswered = 0;
  let pingTimeout: NodeJS.Timeout | undefined;
  const bytesRead = (): number => session.socket?.bytesRead ?? 0;

  const destroy = (reason: string): void => {
    if (session.destroyed) return;
    stop();
    onClosed(reason);
    // Destroys the socket too; grpc-js's close handlers end the calls on it.
    session.destroy();
  };

  const probe = (timeoutMs: number): void => {
    if (session.destroyed || session.closed || pingTimeout !== undefined) return;
    if (bytesRead() === readWhenAnswered) return;
    // The answer proves Node read everything that came before the PING went out.
    const readWhenSent = bytesRead();
    const timer = setTimeout(
      () => setImmediate(() => pingTimeout === timer && destroy(`no answer to a PING within ${timeoutMs} ms`)),
      timeoutMs,
    );
    pingTimeout = timer;
    try {
      session.ping((error) => {
        clearTimeout(pingTimeout);
        pingTimeout = undefined;
        if (error) destroy(`PING failed: ${error.message}`);
        else readWhenAnswered = readWhenSent + PING_ACK_BYTES;
      });
    } catch (error) {
      destroy(`PING failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  const interval = setInterval(() => probe(probeTimeoutMs), PROBE_INTERVAL_MS).unref();
  const stop = (): void => {
    clearInterval(interval);
    clearTimeout(pingTimeout);
  };
  session.once("close", stop);

  // One listener for every stream of the session (`this` is the stream): a closure per
  // stream would stay with it for as long as it is open, on every open Watch.
  function onStreamClose(this: ServerHttp2Stream): void {
    if (this.rstCode !== constants.NGHTTP2_CANCEL || session.destroyed || session.closed) return;
    const second = Math.floor(Date.now() / 1000);
    tokens = Math.min(RESET_BURST, tokens + (second - refilledAtSecond) * RESETS_PER_SECOND);
    refilledAtSecond = second;
    // Past the budget nghttp2 has sent GOAWAY and stopped reading: close now, not at keepalive.
    if (--tokens < 0) setImmediate(() => destroy("the client reset more streams than HTTP/2 allows"));
    else if (tokens < RESETS_LEFT_TO_PROBE) setImmediate(() => probe(SUSPECT_PROBE_TIMEOUT_MS));
  }
  session.on("stream", (stream: ServerHttp2Stream) => stream.on("close", onStreamClose));
}
