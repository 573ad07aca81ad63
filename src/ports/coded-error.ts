// The shape every port's error shares: a stable `code` callers branch on
// (never the message text), and the client library's own error as `cause`.
export abstract class CodedError<Code extends string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
