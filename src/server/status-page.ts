/**
 * The status page on the HTTP port: `/` (the page), `/status/app.js` (its script, bundled at
 * build time with Connect for the browser, so nothing is fetched from elsewhere),
 * `/status/events` (snapshots as server-sent events) and `/status.json` (one snapshot). The
 * page watches and bumps keys through the port's own Connect endpoint, with the token a
 * person types in; the page itself needs none and shows nothing of any key until asked.
 */
import { readFile } from "node:fs/promises";
import type { HttpRequest, HttpResponse } from "./http-endpoint.js";
import type { ReplicaStatus } from "./replica-status.js";

/** Where `npm run build` puts the page's files (from src/server and dist/server alike). */
const ASSETS = new URL("../../dist/status/", import.meta.url);

const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/status/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/status/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

/** The page may run its own script and style and talk to this origin only. */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** Serves the status page's paths; answers 404 for any other. */
export function statusPageHandler(status: ReplicaStatus): (request: HttpRequest, response: HttpResponse) => void {
  /** Files are read once, on first request. */
  const cache = new Map<string, Promise<Buffer | undefined>>();
  const asset = (file: string): Promise<Buffer | undefined> => {
    let read = cache.get(file);
    if (read === undefined) {
      read = readFile(new URL(file, ASSETS)).catch(() => undefined);
      cache.set(file, read);
    }
    return read;
  };
  return (request, response) => {
    const path = (request.url ?? "").split("?", 1)[0] ?? "";
    if (path !== "/status/events" && path !== "/status.json" && FILES[path] === undefined) {
      response
        .writeHead(404, { "content-type": "text/plain" })
        .end("not found: syncgen serves its status page at / and its RPCs at /PACKAGE.SERVICE/METHOD\n");
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    if (path === "/status/events") {
      if (!status.stream(response)) {
        response
          .writeHead(503, { "content-type": "text/plain", "retry-after": "10" })
          .end(
            status.closed
              ? "this replica is shutting down\n"
              : "too many status viewers on this replica; try again shortly\n",
          );
      }
      return;
    }
    if (path === "/status.json") {
      response
        .writeHead(200, { "content-type": "application/json", "cache-control": "no-store", ...SECURITY_HEADERS })
        .end(`${JSON.stringify(status.snapshot())}\n`);
      return;
    }
    const known = FILES[path] as { file: string; type: string };
    asset(known.file).then((body) => {
      if (body === undefined) {
        response
          .writeHead(503, { "content-type": "text/plain" })
          .end("the status page is not built: run `npm run build`\n");
        return;
      }
      response.writeHead(200, { "content-type": known.type, "cache-control": "no-cache", ...SECURITY_HEADERS });
      if (request.method === "HEAD") response.end();
      else response.end(body);
    });
  };
}
