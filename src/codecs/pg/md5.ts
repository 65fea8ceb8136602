import { createHash } from "node:crypto"

const md5hex = (data: Buffer): string => createHash("md5").update(data).digest("hex")

/** PostgreSQL's md5 response: "md5" + md5(md5(password + user) + salt), NUL-terminated for PasswordMessage. */
export const md5Response = (user: string, password: string, salt: Uint8Array): Uint8Array => {
  const inner = md5hex(Buffer.from(password + user))
  return Buffer.from(`md5${md5hex(Buffer.concat([Buffer.from(inner), salt]))}\0`)
}
