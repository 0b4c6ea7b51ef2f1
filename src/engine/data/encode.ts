// Writers for the formats the readers take (IDX, CIFAR-10 binary, NPY): tests
// and demos build small datasets with them instead of shipping binary fixtures.

const IDX_CODES = { ubyte: 0x08, byte: 0x09, short: 0x0b, int: 0x0c, float: 0x0d, double: 0x0e } as const;
export type IdxType = keyof typeof IDX_CODES;
const IDX_SIZES: Record<IdxType, number> = { ubyte: 1, byte: 1, short: 2, int: 4, float: 4, double: 8 };

/** An IDX file (big-endian) holding `values` of the given type and dimensions. */
export function encodeIdx(type: IdxType, dims: number[], values: ArrayLike<number>): Uint8Array {
  const size = IDX_SIZES[type];
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + values.length * size);
  const v = new DataView(out.buffer);
  out[2] = IDX_CODES[type];
  out[3] = dims.length;
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < values.length; i++) {
    const o = header + i * size;
    const x = values[i];
    if (type === 'ubyte') v.setUint8(o, x);
    else if (type === 'byte') v.setInt8(o, x);
    else if (type === 'short') v.setInt16(o, x, false);
    else if (type === 'int') v.setInt32(o, x, false);
    else if (type === 'float') v.setFloat32(o, x, false);
    else v.setFloat64(o, x, false);
  }
  return out;
}

/** CIFAR-10 records: `pixels[r]` is one image in the file's own CHW order (3072 bytes). */
export function encodeCifarBatch(records: { label: number; pixels: ArrayLike<number> }[]): Uint8Array {
  const out = new Uint8Array(records.length * 3073);
  records.forEach((r, i) => {
    out[i * 3073] = r.label;
    out.set(Array.from(r.pixels), i * 3073 + 1);
  });
  return out;
}

export type NpyDtype = '|u1' | '<f4' | '<f8' | '<i8' | '<i4' | '>f4';

/** An NPY v1.0 file as np.save writes it: header padded with spaces to a multiple of 64 bytes. */
export function encodeNpy(descr: NpyDtype, shape: number[], values: ArrayLike<number>): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = 10 + dict.length + 1;
  dict += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const size = Number(descr.slice(2));
  const out = new Uint8Array(10 + dict.length + values.length * size);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  const v = new DataView(out.buffer);
  v.setUint16(8, dict.length, true);
  out.set(new TextEncoder().encode(dict), 10);
  const base = 10 + dict.length;
  const little = descr[0] !== '>';
  for (let i = 0; i < values.length; i++) {
    const o = base + i * size;
    const x = values[i];
    if (descr === '|u1') v.setUint8(o, x);
    else if (descr === '<f8') v.setFloat64(o, x, little);
    else if (descr === '<i8') v.setBigInt64(o, BigInt(x), little);
    else if (descr === '<i4') v.setInt32(o, x, little);
    else v.setFloat32(o, x, little);
  }
  return out;
}
