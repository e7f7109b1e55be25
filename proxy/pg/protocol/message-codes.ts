/** Wire constants of the PostgreSQL frontend/backend protocol 3.0 (PostgreSQL 15). */

/** Tags of messages a client (frontend) sends. */
// biome-ignore lint/suspicious/noConstEnum: STYLE.md wants const enums for wire constants; tsx emits them as objects, so cross-file imports work
export const enum FrontendCode {
  /** 'B' */
  Bind = 0x42,
  /** 'C' */
  Close = 0x43,
  /** 'D' */
  Describe = 0x44,
  /** 'E' */
  Execute = 0x45,
  /** 'F' */
  FunctionCall = 0x46,
  /** 'H' */
  Flush = 0x48,
  /** 'P' */
  Parse = 0x50,
  /** 'Q' */
  Query = 0x51,
  /** 'S' */
  Sync = 0x53,
  /** 'X' */
  Terminate = 0x58,
  /** 'c' */
  CopyDone = 0x63,
  /** 'd' */
  CopyData = 0x64,
  /** 'f' */
  CopyFail = 0x66,
  /** 'p' — PasswordMessage, SASLInitialResponse, SASLResponse (or GSSResponse) by context. */
  AuthResponse = 0x70,
}

/** Tags of messages a server (backend) sends. */
// biome-ignore lint/suspicious/noConstEnum: STYLE.md wants const enums for wire constants; tsx emits them as objects, so cross-file imports work
export const enum BackendCode {
  /** '1' */
  ParseComplete = 0x31,
  /** '2' */
  BindComplete = 0x32,
  /** '3' */
  CloseComplete = 0x33,
  /** 'A' */
  NotificationResponse = 0x41,
  /** 'C' */
  CommandComplete = 0x43,
  /** 'D' */
  DataRow = 0x44,
  /** 'E' */
  ErrorResponse = 0x45,
  /** 'G' */
  CopyInResponse = 0x47,
  /** 'H' */
  CopyOutResponse = 0x48,
  /** 'I' */
  EmptyQueryResponse = 0x49,
  /** 'K' */
  BackendKeyData = 0x4b,
  /** 'N' */
  NoticeResponse = 0x4e,
  /** 'R' */
  Authentication = 0x52,
  /** 'S' */
  ParameterStatus = 0x53,
  /** 'T' */
  RowDescription = 0x54,
  /** 'V' */
  FunctionCallResponse = 0x56,
  /** 'W' */
  CopyBothResponse = 0x57,
  /** 'Z' */
  ReadyForQuery = 0x5a,
  /** 'c' */
  CopyDone = 0x63,
  /** 'd' */
  CopyData = 0x64,
  /** 'n' */
  NoData = 0x6e,
  /** 's' */
  PortalSuspended = 0x73,
  /** 't' */
  ParameterDescription = 0x74,
  /** 'v' */
  NegotiateProtocolVersion = 0x76,
}

/** Subtypes of the Authentication ('R') message: the Int32 after the length. */
// biome-ignore lint/suspicious/noConstEnum: STYLE.md wants const enums for wire constants; tsx emits them as objects, so cross-file imports work
export const enum AuthenticationCode {
  Ok = 0,
  KerberosV5 = 2,
  CleartextPassword = 3,
  MD5Password = 5,
  GSS = 7,
  GSSContinue = 8,
  SSPI = 9,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

/** Request codes of untagged startup-phase packets (the Int32 after the length). */
// biome-ignore lint/suspicious/noConstEnum: STYLE.md wants const enums for wire constants; tsx emits them as objects, so cross-file imports work
export const enum StartupCode {
  /** Protocol 3.0: major 3 in the high 16 bits, minor 0 in the low 16 bits. */
  ProtocolVersion3 = 196608,
  CancelRequest = 80877102,
  SSLRequest = 80877103,
  GSSENCRequest = 80877104,
}

/** Transaction status byte of ReadyForQuery. */
// biome-ignore lint/suspicious/noConstEnum: STYLE.md wants const enums for wire constants; tsx emits them as objects, so cross-file imports work
export const enum TransactionStatus {
  /** 'I' */
  Idle = 0x49,
  /** 'T' */
  InTransaction = 0x54,
  /** 'E' */
  Failed = 0x45,
}

/** Field codes of ErrorResponse / NoticeResponse. */
// biome-ignore lint/suspicious/noConstEnum: STYLE.md wants const enums for wire constants; tsx emits them as objects, so cross-file imports work
export const enum ErrorField {
  /** 'S' localized severity */
  Severity = 0x53,
  /** 'V' non-localized severity */
  SeverityNonLocalized = 0x56,
  /** 'C' SQLSTATE */
  Code = 0x43,
  /** 'M' */
  Message = 0x4d,
  /** 'D' */
  Detail = 0x44,
  /** 'H' */
  Hint = 0x48,
  /** 'P' */
  Position = 0x50,
  /** 'p' */
  InternalPosition = 0x70,
  /** 'q' */
  InternalQuery = 0x71,
  /** 'W' */
  Where = 0x57,
  /** 's' */
  Schema = 0x73,
  /** 't' */
  Table = 0x74,
  /** 'c' */
  Column = 0x63,
  /** 'd' */
  DataType = 0x64,
  /** 'n' */
  Constraint = 0x6e,
  /** 'F' */
  File = 0x46,
  /** 'L' */
  Line = 0x4c,
  /** 'R' */
  Routine = 0x52,
}
