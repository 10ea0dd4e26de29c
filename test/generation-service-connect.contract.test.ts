/**
 * The contract over the HTTP port (see helpers/generation-service-contract.ts): Connect binary
 * over HTTP/2 on every store, and Connect JSON over HTTP/2 on the memory store.
 */
import { connectGenerationClient } from "./helpers/connect-client.js";
import { describeGenerationServiceContract } from "./helpers/generation-service-contract.js";

describeGenerationServiceContract([
  {
    name: "Connect binary over HTTP/2",
    client: (ts) =>
      connectGenerationClient(ts.httpUrl, { name: "Connect", protocol: "connect", binary: true, httpVersion: "2" }),
  },
  {
    name: "Connect JSON over HTTP/2",
    client: (ts) =>
      connectGenerationClient(ts.httpUrl, {
        name: "Connect JSON",
        protocol: "connect",
        binary: false,
        httpVersion: "2",
      }),
    stores: ["memory"],
    jsonClient: true,
  },
]);
