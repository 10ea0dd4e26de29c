/** `npm test`'s own set-up on a machine that lacks what the tests need: it says what, and how to get it. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, test } from "vitest";

const SCRIPT = fileURLToPath(new URL("../scripts/system-packages.sh", import.meta.url));

test("without the tools, and told not to install, it names each Debian package and the command, and fails", async () => {
  const failed = await promisify(execFile)("/bin/bash", [SCRIPT], {
    // No tool on PATH, a Python without grpcio, and no Go sources.
    env: {
      PATH: "/nonexistent",
      SYNCGEN_TEST_PYTHON: "/nonexistent/python3",
      SYNCGEN_TEST_GOCODE: "/nonexistent",
      SYNCGEN_NO_INSTALL: "1",
    },
  }).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  expect(failed?.code).toBe(1);
  const packages =
    "redis-server redis-tools openssl curl chromium protobuf-compiler protobuf-compiler-grpc python3-grpcio python3-pip python3-setuptools python3-wheel python3-django golang-go protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev";
  expect(failed?.stderr).toContain(`npm test needs these system packages (Debian names): ${packages}`);
  expect(failed?.stderr).toContain(`install them, e.g.: sudo apt-get install ${packages}`);
});
