/** Globs for names in policies: `*` is any run of characters, `?` one character; case-sensitive. */
const cache = new Map<string, RegExp>()

export const globToRegExp = (glob: string): RegExp => {
  let re = cache.get(glob)
  if (re === undefined) {
    const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")
    re = new RegExp(`^${body}$`, "su")
    cache.set(glob, re)
  }
  return re
}

export const globMatch = (glob: string, value: string): boolean => globToRegExp(glob).test(value)

export const anyGlob = (globs: ReadonlyArray<string>, value: string): boolean => globs.some((g) => globMatch(g, value))
