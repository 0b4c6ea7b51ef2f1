// Request bytes are tenant input like any other: grpc-js answers INTERNAL when
// a request deserializer throws, before any handler runs, so the server's
// deserializers are wrapped here never to throw. Before protobufjs decodes a
// message, its wire form is walked against the contract's descriptors:
// unknown field numbers, a field sent with the wrong wire type, strings that
// are not UTF-8 or longer than any field needs, and truncated or overlong
// encodings are caught naming the field. What fails comes through to the
// handler as a MalformedRequest, which the call wrappers (call.ts) turn into
// INVALID_ARGUMENT with the field in the trailer, after the API key is checked.
import type { ServiceDefinition } from '@grpc/proto-loader';
import { PACKAGE, packageDefinition, type RawField, type RawMessage } from './proto.js';

/** Longest string any request field needs (references are 2 KiB, names 200 characters). */
export const MAX_STRING_BYTES = 64 * 1024;
/** Nested messages deeper than this are refused (the contract nests three deep at most). */
const MAX_DEPTH = 16;

export class MalformedRequest {
  constructor(
    readonly message: string,
    /** The field at fault (`spec.rounds`, `spec.#99`), when one is. */
    readonly field?: string,
  ) {}
}

class WireProblem extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** Wire types each declared type may arrive with (a repeated scalar may also come packed, as wire type 2). */
function wireTypesOf(f: RawField): number[] {
  const packed = f.label === 'LABEL_REPEATED' ? [2] : [];
  switch (f.type) {
    case 'TYPE_DOUBLE':
    case 'TYPE_FIXED64':
    case 'TYPE_SFIXED64':
      return [1, ...packed];
    case 'TYPE_FLOAT':
    case 'TYPE_FIXED32':
    case 'TYPE_SFIXED32':
      return [5, ...packed];
    case 'TYPE_STRING':
    case 'TYPE_BYTES':
    case 'TYPE_MESSAGE':
      return [2];
    default:
      return [0, ...packed]; // varints: int32/64, uint32/64, sint32/64, bool, enum
  }
}

function lookupMessage(typeName: string, scope: RawMessage): RawMessage | null {
  const short = typeName.split('.').at(-1) ?? typeName;
  const nested = scope.nestedType.find((n) => n.name === short);
  if (nested) return nested;
  const name = typeName.replace(/^\./, '');
  const def = packageDefinition[name.includes('.') ? name : `${PACKAGE}.${name}`];
  return def && 'type' in def && typeof def.type === 'object' && def.type !== null ? (def.type as RawMessage) : null;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Walks one message's bytes against its descriptor; throws WireProblem naming the field. */
function walk(buf: Uint8Array, type: RawMessage, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw new WireProblem(`${path || 'request'}: nested more than ${MAX_DEPTH} deep`, path || undefined);
  const fields = new Map(type.field.map((f) => [f.number, f]));
  let pos = 0;
  const varint = (what: string): number => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new WireProblem(`${what}: truncated varint`, path || undefined);
      const b = buf[pos++]!;
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new WireProblem(`${what}: varint longer than 10 bytes`, path || undefined);
  };
  while (pos < buf.length) {
    const tag = varint(path || 'request');
    const number = Math.floor(tag / 8);
    const wt = tag % 8;
    const f = fields.get(number);
    const field = f ? (path ? `${path}.${f.name}` : f.name) : `${path ? `${path}.` : ''}#${number}`;
    if (number === 0) throw new WireProblem(`${path || 'request'}: field number 0 is not valid protobuf`, path || undefined);
    if (!f) throw new WireProblem(`${field}: unknown field number ${number} in ${type.name}`, field);
    if (!wireTypesOf(f).includes(wt)) throw new WireProblem(`${field}: wrong wire type ${wt} for a ${f.type.replace('TYPE_', '').toLowerCase()} field`, field);
    if (wt === 0) varint(field);
    else if (wt === 1 || wt === 5) {
      pos += wt === 1 ? 8 : 4;
      if (pos > buf.length) throw new WireProblem(`${field}: truncated`, field);
    } else {
      const len = varint(field);
      if (pos + len > buf.length) throw new WireProblem(`${field}: length ${len} runs past the end of the message`, field);
      const body = buf.subarray(pos, pos + len);
      pos += len;
      if (f.type === 'TYPE_STRING') {
        if (len > MAX_STRING_BYTES) throw new WireProblem(`${field}: ${len} bytes; at most ${MAX_STRING_BYTES}`, field);
        try {
          utf8.decode(body);
        } catch {
          throw new WireProblem(`${field}: not valid UTF-8`, field);
        }
      } else if (f.type === 'TYPE_MESSAGE') {
        const inner = lookupMessage(f.typeName, type);
        // Well-known types (Struct, Value) come from outside the contract: protobufjs judges them.
        if (inner) walk(body, inner, field, depth + 1);
      }
    }
  }
}

/** A deserializer that never throws: bad bytes become a MalformedRequest. */
function strictDeserializer(type: RawMessage, decode: (buf: Buffer) => object): (buf: Buffer) => object {
  return (buf) => {
    try {
      walk(buf, type, '', 0);
      return decode(buf);
    } catch (e) {
      if (e instanceof WireProblem) return new MalformedRequest(e.message, e.field);
      return new MalformedRequest(`request: not a valid ${type.name} message`);
    }
  };
}

/** The service definition with every request deserializer made strict (for the server only). */
export function strictService(def: ServiceDefinition): ServiceDefinition {
  return Object.fromEntries(
    Object.entries(def).map(([name, m]) => [
      name,
      { ...m, requestDeserialize: strictDeserializer(m.requestType.type as unknown as RawMessage, m.requestDeserialize) },
    ]),
  );
}
