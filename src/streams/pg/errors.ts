/**
 * Why a PG session ended or a step of it failed, as typed values. `toProblem` is the one
 * boundary where they become protocol errors for the client.
 */
import { Data } from "effect"
import type { Problem } from "../../codecs/pg/backend.ts"

/** The client closed or reset its connection: nothing can be sent to it. */
export class ClientGone extends Data.TaggedError("ClientGone")<{}> {}

export class ClientProtocolViolation extends Data.TaggedError("ClientProtocolViolation")<{ readonly detail: string }> {}

export class UnsupportedProtocol extends Data.TaggedError("UnsupportedProtocol")<{ readonly version: number }> {}

export class TlsRequired extends Data.TaggedError("TlsRequired")<{}> {}

export class ClientAuthFailed extends Data.TaggedError("ClientAuthFailed")<{ readonly user: string }> {}

export class UnknownTarget extends Data.TaggedError("UnknownTarget")<{ readonly database: string }> {}

export class ReplicationRefused extends Data.TaggedError("ReplicationRefused")<{}> {}

/** The startup packet asks for a setting Sluice does not pass on (startup-parameters.ts). */
export class StartupSettingRefused extends Data.TaggedError("StartupSettingRefused")<{ readonly parameter: string; readonly reason: string }> {}

export class LoginTimeout extends Data.TaggedError("LoginTimeout")<{}> {}

/** The target could not be reached or its TLS could not be established. */
export class TargetUnreachable extends Data.TaggedError("TargetUnreachable")<{ readonly target: string; readonly detail: string }> {}

/** The target refused Sluice's stored credentials, or asked for a method Sluice does not speak. */
export class TargetLoginFailed extends Data.TaggedError("TargetLoginFailed")<{ readonly target: string; readonly detail: string }> {}

/** The target's connection ended or broke mid-session. */
export class TargetGone extends Data.TaggedError("TargetGone")<{ readonly target: string }> {}

export class TargetProtocolViolation extends Data.TaggedError("TargetProtocolViolation")<{
  readonly target: string
  readonly detail: string
}> {}

/** The audit trail cannot record: sessions and statements are refused rather than unaudited. */
export class AuditUnavailable extends Data.TaggedError("AuditUnavailable")<{ readonly reason: string }> {}

export type SessionError =
  | AuditUnavailable
  | ClientGone
  | ClientProtocolViolation
  | UnsupportedProtocol
  | TlsRequired
  | ClientAuthFailed
  | UnknownTarget
  | ReplicationRefused
  | StartupSettingRefused
  | LoginTimeout
  | TargetUnreachable
  | TargetLoginFailed
  | TargetGone
  | TargetProtocolViolation

const fatal = (code: string, message: string, hint?: string): Problem =>
  hint === undefined ? { severity: "FATAL", code, message } : { severity: "FATAL", code, message, hint }

/**
 * The FATAL a client gets for each failure. Messages name the target at most: never a
 * backend host, role or credential.
 */
export const toProblem = (e: SessionError): Problem | undefined => {
  switch (e._tag) {
    case "ClientGone":
      return undefined
    case "AuditUnavailable":
      return fatal("57P03", `the audit trail cannot record this session (${e.reason}), so it is refused`)
    case "ClientProtocolViolation":
      return fatal("08P01", `invalid frontend message: ${e.detail}`)
    case "UnsupportedProtocol":
      return fatal("0A000", `unsupported frontend protocol ${e.version >>> 16}.${e.version & 0xffff}: Sluice supports protocol 3.0`)
    case "TlsRequired":
      return fatal("28000", "this listener requires TLS: connect with sslmode=require")
    case "ClientAuthFailed":
      return fatal("28P01", `password authentication failed for user "${e.user}"`)
    case "UnknownTarget":
      return fatal("3D000", `database "${e.database}" does not exist`, "The database name selects a Sluice target; ask your operator for the target names.")
    case "ReplicationRefused":
      return fatal("42501", "replication connections are not allowed through Sluice")
    case "StartupSettingRefused":
      return fatal("42501", `startup parameter "${e.parameter}": ${e.reason}`, "Connect without it, then SET what you need: the policy decides.")
    case "LoginTimeout":
      return fatal("08006", "login timed out")
    case "TargetUnreachable":
      return fatal("08001", `target "${e.target}" is unreachable: ${e.detail}`)
    case "TargetLoginFailed":
      return fatal("08004", `target "${e.target}" refused Sluice's login: ${e.detail}`)
    case "TargetGone":
      return fatal("08006", `the connection to target "${e.target}" was lost`)
    case "TargetProtocolViolation":
      return fatal("08P01", `target "${e.target}" sent an invalid message: ${e.detail}`)
  }
}

/**
 * The catalog's side connection to a target could not answer (unreachable, login refused,
 * lost, too slow). The detail names the failure, never a backend host, role or credential.
 */
export class CatalogUnavailable extends Data.TaggedError("CatalogUnavailable")<{ readonly target: string; readonly detail: string }> {}
