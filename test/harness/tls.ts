/**
 * A throwaway certificate authority and a server certificate for localhost and 127.0.0.1,
 * made with the openssl CLI, for TLS on both sides of the gateway in tests.
 */
import { execFileSync } from "node:child_process"
import { writeFileSync } from "node:fs"
import { join } from "node:path"

export interface TestPki {
  readonly caFile: string
  readonly certFile: string
  readonly keyFile: string
  /** A second CA that signed nothing here: verifying against it must fail. */
  readonly otherCaFile: string
}

const openssl = (args: Array<string>, cwd: string): void => {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] })
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer }
    if (err.code === "ENOENT") throw new Error("openssl not found: install Debian package openssl")
    throw new Error(`openssl ${args[0]} failed: ${err.stderr?.toString() ?? String(e)}`)
  }
}

const makeCa = (dir: string, name: string): void =>
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.crt`], dir)

export const makeTestPki = (dir: string): TestPki => {
  makeCa(dir, "sluice-test-ca")
  makeCa(dir, "sluice-other-ca")
  writeFileSync(join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"], dir)
  openssl(
    ["x509", "-req", "-in", "server.csr", "-CA", "sluice-test-ca.crt", "-CAkey", "sluice-test-ca.key", "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt"],
    dir
  )
  return {
    caFile: join(dir, "sluice-test-ca.crt"),
    certFile: join(dir, "server.crt"),
    keyFile: join(dir, "server.key"),
    otherCaFile: join(dir, "sluice-other-ca.crt")
  }
}
