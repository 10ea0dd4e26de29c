// Loaded with `node --import`: reports every module the process resolves (ESM through a
// resolve hook, CommonJS through require's cache at exit) on stderr, one `IMPORT url` line each.
import { createRequire, register } from "node:module";

register(
  "data:text/javascript,export async function resolve(s,c,n){const r=await n(s,c);process.stderr.write('IMPORT '+r.url+'\\n');return r;}",
);
const require = createRequire(import.meta.url);
process.on("exit", () => {
  for (const path of Object.keys(require.cache)) process.stderr.write(`IMPORT file://${path}\n`);
});
