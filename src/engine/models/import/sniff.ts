// What a model file's first bytes say it is, with nothing parsed: shared by
// the upload dispatch (import/index.ts) and the Keras reader, and free of
// their heavy dependencies (h5wasm, onnxruntime).
const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Whether `bytes` hold an HDF5 file: the signature at offset 0 or, after a
 * user block, at 512, 1024, 2048, ... (HDF5's rule), up to 64 KiB in.
 */
export function isHdf5(bytes: Uint8Array): boolean {
  const at = (off: number): boolean => off + SIGNATURE.length <= bytes.length && SIGNATURE.every((b, i) => bytes[off + i] === b);
  if (at(0)) return true;
  for (let off = 512; off <= 65536; off *= 2) if (at(off)) return true;
  return false;
}
