// What importing a model written by another framework (ONNX, Keras) throws
// when it cannot: the file is not what it claims (a corrupt protobuf or
// archive), or it uses something Ticketsmith cannot build (an op, a layer, an
// opset, external weights, dynamic spatial sizes, several inputs). The
// service answers both with 400, the second as UNSUPPORTED_MODEL, keeping the
// message, which names the op or layer and the first node that uses it.
export type ModelImportCode = 'UNSUPPORTED_MODEL' | 'INVALID_ARGUMENT';

export class ModelImportError extends Error {
  override name = 'ModelImportError';

  constructor(
    readonly code: ModelImportCode,
    message: string,
    /** The request field or file at fault, when one is (`files`, `model.onnx`). */
    readonly field?: string,
  ) {
    super(message);
  }
}
