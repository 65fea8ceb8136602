import { Data } from "effect"

/** The byte stream cannot be cut into frames: the connection cannot continue. */
export class FrameError extends Data.TaggedError("FrameError")<{
  readonly reason: "length-too-small" | "length-too-large"
  /** The message type byte, or 0 for an untyped startup-phase packet. */
  readonly type: number
  readonly length: number
  readonly limit: number
}> {
  override get message(): string {
    const what = this.type === 0 ? "startup packet" : `message type '${String.fromCharCode(this.type)}'`
    return this.reason === "length-too-large"
      ? `${what} of ${this.length} bytes exceeds the limit of ${this.limit} bytes`
      : `${what} has an invalid length ${this.length}`
  }
}

/** A whole frame whose body does not match its message type. */
export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly type: number
  readonly detail: string
}> {
  override get message(): string {
    const what = this.type === 0 ? "startup packet" : `message type '${String.fromCharCode(this.type)}'`
    return `malformed ${what}: ${this.detail}`
  }
}
