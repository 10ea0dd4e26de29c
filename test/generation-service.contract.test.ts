/** The contract over gRPC, on every store (see helpers/generation-service-contract.ts). */
import { describeGenerationServiceContract } from "./helpers/generation-service-contract.js";

describeGenerationServiceContract([{ name: "gRPC", client: (ts) => ts.newClient() }]);
