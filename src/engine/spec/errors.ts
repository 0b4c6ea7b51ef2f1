// The one error a run spec raises: it names the field at fault, so every door
// can answer "400 / INVALID_ARGUMENT, field X" without parsing the message.

export class SpecError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'SpecError';
  }
}
