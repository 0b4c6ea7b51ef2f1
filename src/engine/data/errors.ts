// The one error type the data layer throws. Callers (REST/gRPC, CLI) map it to a
// client error: the reference or its files are bad, not the service.

export class DatasetError extends Error {
  /**
   * @param message names the file (path or URL) and the problem.
   * @param field which part of the reference or spec is bad, e.g. `reference`,
   *   `train_images`, `y_test`, `validationFraction`, `inputShape`.
   * @param file the file (path or URL) the problem was found in, when there is one.
   */
  constructor(
    message: string,
    readonly field: string,
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DatasetError';
  }
}

/** Message text of anything thrown, for wrapping foreign errors into DatasetError. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    // Node's errno codes (ENOENT, ECONNREFUSED) say more than the message; fflate's codes are bare numbers.
    const code: unknown = (err as { code?: unknown }).code;
    const prefix = typeof code === 'string' && !err.message.includes(code) ? `${code} ` : '';
    const cause = err.cause instanceof Error ? `: ${describeError(err.cause)}` : '';
    return `${prefix}${err.message}${cause}`;
  }
  return String(err);
}
