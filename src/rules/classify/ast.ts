/**
 * Small readers for libpg-query's JSON parse tree: a node is `{ Tag: body }`
 * (protobuf JSON, so false/zero/empty fields are absent); some fields hold a
 * bare body (InsertStmt.relation is a RangeVar body, SelectStmt.larg a
 * SelectStmt body).
 */

export type Obj = { readonly [key: string]: unknown }

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v)

export const list = (v: unknown): ReadonlyArray<unknown> => (Array.isArray(v) ? v : [])

export const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined)

export const num = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined)

/** `{ Tag: body }` → [Tag, body]; anything else → undefined. Tags start with an upper-case letter, fields never do. */
export const unwrap = (node: unknown): readonly [string, Obj] | undefined => {
  if (!isObj(node)) return undefined
  let tag: string | undefined
  for (const k in node) {
    if (tag !== undefined) return undefined
    tag = k
  }
  if (tag === undefined) return undefined
  const c = tag.charCodeAt(0)
  if (c < 65 || c > 90) return undefined
  const b = node[tag]
  return isObj(b) ? [tag, b] : undefined
}

/** The body of a node with the given tag. */
export const bodyOf = (node: unknown, tag: string): Obj | undefined => {
  const u = unwrap(node)
  return u !== undefined && u[0] === tag ? u[1] : undefined
}

/** A `String` node's value ({"String": {}} is the empty string). */
export const stringNode = (node: unknown): string | undefined => {
  const b = bodyOf(node, "String")
  return b === undefined ? undefined : (str(b["sval"]) ?? "")
}

/** A list of `String` nodes (a qualified name), or undefined if any item is not a String. */
export const nameList = (v: unknown): ReadonlyArray<string> | undefined => {
  const out: string[] = []
  for (const item of list(v)) {
    const s = stringNode(item)
    if (s === undefined) return undefined
    out.push(s)
  }
  return out
}

/** A bare RangeVar body (has `relname`). */
export const isRangeVarBody = (v: unknown): v is Obj => isObj(v) && typeof v["relname"] === "string"
