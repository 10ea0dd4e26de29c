/**
 * Throw-away certificates for TLS tests, made with openssl at test time in a temporary
 * directory (no private key is ever committed): a CA, a server certificate for 127.0.0.1 and
 * localhost, a client certificate the CA signed, and one from another CA.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Certificates {
  readonly dir: string;
  /** PEM file paths. */
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A client certificate from a CA the server does not trust. */
  readonly strangerCert: string;
  readonly strangerKey: string;
  /** Reads one of the files above. */
  read(path: string): Buffer;
  remove(): void;
}

export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), "syncgen-tls-"));
  const at = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  };
  const ca = (name: string): void =>
    openssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      at(`${name}.key`),
      "-out",
      at(`${name}.pem`),
    );
  const signed = (name: string, caName: string, extensions: string): void => {
    writeFileSync(at(`${name}.ext`), extensions);
    openssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      at(`${name}.key`),
      "-out",
      at(`${name}.csr`),
    );
    openssl(
      "x509",
      "-req",
      "-in",
      at(`${name}.csr`),
      "-CA",
      at(`${caName}.pem`),
      "-CAkey",
      at(`${caName}.key`),
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      at(`${name}.ext`),
      "-out",
      at(`${name}.pem`),
    );
  };
  ca("test-ca");
  ca("stranger-ca");
  signed("server", "test-ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  signed("client", "test-ca", "extendedKeyUsage=clientAuth\n");
  signed("stranger", "stranger-ca", "extendedKeyUsage=clientAuth\n");
  return {
    dir,
    caCert: at("test-ca.pem"),
    serverCert: at("server.pem"),
    serverKey: at("server.key"),
    clientCert: at("client.pem"),
    clientKey: at("client.key"),
    strangerCert: at("stranger.pem"),
    strangerKey: at("stranger.key"),
    read: (path) => readFileSync(path),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
