// Builds the status page (src/status-page) into dist/status: its script bundled with
// @connectrpc/connect-web and protobuf-es by esbuild, so the page needs nothing from elsewhere
// at run time, and its HTML and CSS copied beside it. Run by `npm run build`.
import { copyFile, mkdir } from "node:fs/promises";
import { build } from "esbuild";

const source = new URL("../src/status-page/", import.meta.url);
const out = new URL("../dist/status/", import.meta.url);
await mkdir(out, { recursive: true });
await build({
  entryPoints: [new URL("app.ts", source).pathname],
  outfile: new URL("app.js", out).pathname,
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  legalComments: "eof",
  logLevel: "warning",
});
await Promise.all(["index.html", "style.css"].map((file) => copyFile(new URL(file, source), new URL(file, out))));
