// The one error a run spec raises: it names the field at fault, so every door
// can answer "400 / INVALID_ARGUMENT, field X" without parsing the message.
// `issues` lists every problem found in the same pass (the first is the
// error's own field and message), so a client can fix them all at once.

export class SpecError extends Error {
  readonly issues: { field: string; message: string }[];

  constructor(
    message: string,
    readonly field: string,
    issues?: { field: string; message: string }[],
  ) {
    super(message);
    this.name = 'SpecError';
    this.issues = issues && issues.length > 0 ? issues : [{ field, message }];
  }
}
