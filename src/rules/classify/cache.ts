/**
 * A bounded LRU of classifications by shape key. Each key holds a few
 * variants, which differ in their pinned literals (see analyze.ts). Bounded
 * by entry count and by characters held, so that a flood of large distinct
 * statements cannot grow memory without bound.
 */
import type { Template } from "./analyze.ts"

/** Variants kept per key (texts of one shape that differ in a pinned literal). */
const MAX_VARIANTS = 8

export interface CacheStats {
  readonly hits: number
  readonly misses: number
  /** Keys held. */
  readonly size: number
}

export class ClassificationCache {
  readonly capacity: number
  readonly maxChars: number
  private readonly entries = new Map<string, Template[]>()
  private chars = 0
  private hitCount = 0
  private missCount = 0

  /** capacity: keys held at most; maxChars: key and pinned-literal characters held at most. */
  constructor(capacity: number, maxChars: number = 32 * 1024 * 1024) {
    this.capacity = Math.max(0, Math.floor(capacity))
    this.maxChars = Math.max(0, Math.floor(maxChars))
  }

  get size(): number {
    return this.entries.size
  }

  get hits(): number {
    return this.hitCount
  }

  get misses(): number {
    return this.missCount
  }

  stats(): CacheStats {
    return { hits: this.hitCount, misses: this.missCount, size: this.entries.size }
  }

  /** The variant of `key` that `matches` accepts; counts a hit or a miss, and refreshes the key's recency. */
  find(key: string, matches: (template: Template) => boolean): Template | undefined {
    const variants = this.entries.get(key)
    if (variants !== undefined) {
      for (const t of variants) {
        if (matches(t)) {
          this.hitCount++
          this.entries.delete(key)
          this.entries.set(key, variants)
          return t
        }
      }
    }
    this.missCount++
    return undefined
  }

  add(key: string, template: Template): void {
    if (this.capacity === 0) return
    const weight = key.length + template.weight
    if (weight > this.maxChars) return
    const variants = this.entries.get(key)
    if (variants === undefined) {
      this.entries.set(key, [template])
      this.chars += weight
    } else {
      this.entries.delete(key)
      this.entries.set(key, variants)
      variants.unshift(template)
      this.chars += template.weight
      while (variants.length > MAX_VARIANTS) {
        const dropped = variants.pop()
        if (dropped !== undefined) this.chars -= dropped.weight
      }
    }
    this.evict()
  }

  clear(): void {
    this.entries.clear()
    this.chars = 0
  }

  private evict(): void {
    while (this.entries.size > this.capacity || this.chars > this.maxChars) {
      const oldest = this.entries.keys().next()
      if (oldest.done === true) return
      const variants = this.entries.get(oldest.value) ?? []
      this.chars -= oldest.value.length + variants.reduce((sum, t) => sum + t.weight, 0)
      this.entries.delete(oldest.value)
    }
  }
}
