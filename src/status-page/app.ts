/**
 * The status page's script, bundled for the browser at build time (scripts/build-status-page.mjs).
 * It follows the replica's snapshots (server-sent events from /status/events) into figures and
 * small plots, and watches keys through the server's own Connect endpoint with
 * @connectrpc/connect-web — one Watch stream, as any watcher — bumping or clearing them with
 * the token typed in (kept in this page's memory only).
 */
import { type Client, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { GenerationService } from "../gen/generation/v1/generation_pb.js";
import type { StatusSnapshot } from "../server/status-snapshot.js";

/** Snapshots kept for the plots: two minutes at one every two seconds. */
const PLOT_POINTS = 60;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found as T;
}

/** A small line plot of the latest values. */
class Sparkline {
  readonly #values: number[] = [];
  constructor(readonly canvas: HTMLCanvasElement) {}

  push(value: number): void {
    this.#values.push(value);
    if (this.#values.length > PLOT_POINTS) this.#values.shift();
    const context = this.canvas.getContext("2d");
    if (context === null) return;
    const { width, height } = this.canvas;
    context.clearRect(0, 0, width, height);
    const max = Math.max(1, ...this.#values);
    context.strokeStyle = "#2563eb";
    context.lineWidth = 1.5;
    context.beginPath();
    this.#values.forEach((v, i) => {
      const x = (i / (PLOT_POINTS - 1)) * (width - 2) + 1;
      const y = height - 2 - (v / max) * (height - 4);
      if (i === 0) context.moveTo(x, y);
      else context.lineTo(x, y);
    });
    context.stroke();
  }
}

function formatUptime(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  return days > 0
    ? `${days} d ${hours} h`
    : hours > 0
      ? `${hours} h ${minutes} min`
      : `${minutes} min ${seconds % 60} s`;
}

/** Follows the replica's snapshots; EventSource reconnects by itself when the server comes back. */
function followStatus(): void {
  const plots = {
    bumps: new Sparkline(element("bumpsPlot")),
    fanOut: new Sparkline(element("fanOutPlot")),
    lag: new Sparkline(element("lagPlot")),
  };
  const health = element("health");
  const events = new EventSource("/status/events");
  events.onmessage = (event: MessageEvent<string>) => {
    const status = JSON.parse(event.data) as StatusSnapshot;
    health.textContent = status.health;
    health.className = `badge ${status.health === "SERVING" ? "serving" : "not-serving"}`;
    const nodes = status.store.nodes > 1 ? `, ${status.store.nodes} nodes` : "";
    element("summary").textContent =
      `v${status.version} · ${status.store.kind}${nodes} (${status.store.state}) · up ${formatUptime(status.uptimeSeconds)}${status.auth ? " · tokens required" : ""}`;
    element("watchStreams").textContent = String(status.watchStreams);
    element("watchedKeys").textContent = String(status.watchedKeys);
    element("blockedStreams").textContent = String(status.blockedStreams);
    element("bumpsPerSecond").textContent = String(status.bumpsPerSecond);
    element("fanOutPerSecond").textContent = String(status.fanOutPerSecond);
    element("fanOutLag").textContent = `${status.fanOutLagMs.mean} / ${status.fanOutLagMs.max} ms`;
    plots.bumps.push(status.bumpsPerSecond);
    plots.fanOut.push(status.fanOutPerSecond);
    plots.lag.push(status.fanOutLagMs.max);
  };
  events.onerror = () => {
    health.textContent = "unreachable";
    health.className = "badge not-serving";
  };
}

/** A failed call's message, as the server wrote it. */
function messageOf(error: unknown): string {
  return ConnectError.from(error).rawMessage;
}

/** The keys panel: one Watch at a time, its rows, and Bump/Clear per key. */
class KeysPanel {
  readonly #client: Client<typeof GenerationService>;
  readonly #rows = new Map<string, HTMLTableRowElement>();
  readonly #state = element<HTMLParagraphElement>("watchState");
  #watching: AbortController | undefined;
  #token = "";

  constructor() {
    this.#client = createClient(
      GenerationService,
      createConnectTransport({
        baseUrl: window.location.origin,
        interceptors: [
          (next) => async (request) => {
            if (this.#token !== "") request.header.set("authorization", `Bearer ${this.#token}`);
            return next(request);
          },
        ],
      }),
    );
    element<HTMLFormElement>("watchForm").addEventListener("submit", (event) => {
      event.preventDefault();
      this.#token = element<HTMLInputElement>("token").value.trim();
      const keys = element<HTMLInputElement>("keys")
        .value.split(/[\s,]+/)
        .filter((key) => key !== "");
      void this.watch([...new Set(keys)]);
    });
  }

  async watch(keys: string[]): Promise<void> {
    this.#watching?.abort();
    const watching = new AbortController();
    this.#watching = watching;
    const body = element<HTMLTableSectionElement>("watched");
    body.replaceChildren();
    this.#rows.clear();
    for (const key of keys) body.append(this.#row(key));
    this.#say(`Connecting to watch ${keys.length} key${keys.length === 1 ? "" : "s"}…`);
    try {
      for await (const response of this.#client.watch({ keys }, { signal: watching.signal })) {
        for (const change of response.changes) this.#show(change.key, change.generation);
        if (!response.continued) this.#say(`Watching ${keys.length} key${keys.length === 1 ? "" : "s"}: live.`);
      }
      this.#say("The server ended the watch.", true);
    } catch (error) {
      if (!watching.signal.aborted) this.#say(`Watch failed: ${messageOf(error)}`, true);
    }
  }

  #row(key: string): HTMLTableRowElement {
    const row = document.createElement("tr");
    row.dataset.key = key;
    const cells = [key, "…", ""].map((text) => {
      const cell = document.createElement("td");
      cell.textContent = text;
      return cell;
    });
    cells[1]?.classList.add("generation");
    const actions = document.createElement("td");
    for (const [label, run] of [
      ["Bump", () => this.#client.bump({ key })],
      ["Clear", () => this.#client.clear({ key })],
    ] as const) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "quiet";
      button.textContent = label;
      button.addEventListener("click", () => {
        run().catch((error: unknown) => this.#say(`${label} ${key} failed: ${messageOf(error)}`, true));
      });
      actions.append(button);
    }
    row.append(...cells, actions);
    this.#rows.set(key, row);
    return row;
  }

  #show(key: string, generation: bigint): void {
    const row = this.#rows.get(key);
    if (row === undefined) return;
    const [, generationCell, changedCell] = row.cells;
    if (generationCell === undefined || changedCell === undefined) return;
    generationCell.textContent = generation === 0n ? "0 (absent)" : String(generation);
    changedCell.textContent = new Date().toLocaleTimeString();
    row.classList.remove("changed");
    // Restarts the highlight animation.
    void row.offsetWidth;
    row.classList.add("changed");
  }

  #say(text: string, isError = false): void {
    this.#state.textContent = text;
    this.#state.className = isError ? "error" : "";
  }
}

followStatus();
new KeysPanel();
