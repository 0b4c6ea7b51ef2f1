// Loading the ticketsmith.v1 contract (proto/ticketsmith/v1/*.proto) once,
// with the one set of proto-loader options both the server and the client
// use, and reading its descriptors (field and enum lists) for the mapping and
// the contract test.
//
// Options, chosen once: field names become lowerCamelCase (keepCase false), so
// messages carry the same keys as the RunSpec schema and the DTOs; int64 as JS
// numbers (ids, sizes and counts stay far below 2^53); enums as their names;
// defaults filled in, except that proto3 `optional` fields stay absent when
// unset (that is what "unset means the schema default" rests on); oneofs get
// their virtual "which member" property.
import { fileURLToPath } from 'node:url';
import { loadSync, type Options, type PackageDefinition, type ServiceDefinition } from '@grpc/proto-loader';

export const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));
export const PROTO_FILES = ['ticketsmith/v1/compression.proto'];
export const PACKAGE = 'ticketsmith.v1';
export const SERVICE_NAME = `${PACKAGE}.Compression`;

/** Trailing metadata of an error status (see compression.proto): the error table's code name, and the field at fault. */
export const ERROR_CODE_KEY = 'ticketsmith-error-code';
export const ERROR_FIELD_KEY = 'ticketsmith-error-field';

export const LOADER_OPTIONS: Options = Object.freeze({
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
});

export const packageDefinition: PackageDefinition = loadSync(PROTO_FILES, LOADER_OPTIONS);

function isService(x: unknown): x is ServiceDefinition {
  return typeof x === 'object' && x !== null && !('format' in x);
}

const service = packageDefinition[SERVICE_NAME];
if (!isService(service)) throw new Error(`${SERVICE_NAME} is missing from ${PROTO_FILES.join(', ')}`);
export const compressionService: ServiceDefinition = service;

/** A field as the descriptor describes it (name in lowerCamelCase). */
export interface FieldDescriptor {
  name: string;
  number: number;
  /** TYPE_INT32, TYPE_DOUBLE, TYPE_ENUM, TYPE_MESSAGE, ... */
  type: string;
  /** Unqualified type name for enums and messages ('Method', 'Struct'). */
  typeName: string;
  repeated: boolean;
  /** proto3 `optional` (presence tracked): a synthetic oneof named `_<field>`. */
  optional: boolean;
  /** For a map field, its key and value types (then `repeated` is true too, as on the wire). */
  map: { key: string; value: string } | null;
}

/** A field as the loaded descriptor lists it (wire.ts reads the same shape). */
export interface RawField {
  name: string;
  number: number;
  type: string;
  typeName: string;
  label: string;
  oneofIndex?: number;
}

export interface RawMessage {
  name: string;
  field: RawField[];
  oneofDecl: { name: string }[];
  nestedType: RawMessage[];
  options: { mapEntry?: boolean } | null;
}

interface RawEnum {
  value: { name: string; number: number }[];
}

function lookup(name: string, format: string): object {
  const full = name.includes('.') ? name : `${PACKAGE}.${name}`;
  const def = packageDefinition[full];
  if (!def || !('format' in def) || typeof def.format !== 'string' || !def.format.includes(format)) throw new Error(`${full} is not a ${format} in the contract`);
  return def.type;
}

/** The fields of a message, in declaration order. */
export function messageFields(message: string): FieldDescriptor[] {
  const raw = lookup(message, 'DescriptorProto') as RawMessage;
  return raw.field.map((f) => {
    // proto-loader fills oneofIndex with 0 for fields outside any oneof, so presence is read from the oneof's name.
    const oneof = f.oneofIndex !== undefined ? raw.oneofDecl[f.oneofIndex]?.name : undefined;
    const typeName = f.typeName.split('.').at(-1) ?? '';
    const entry = f.type === 'TYPE_MESSAGE' ? raw.nestedType.find((n) => n.name === typeName && n.options?.mapEntry) : undefined;
    const kv = (name: string) => entry?.field.find((x) => x.name === name)?.type ?? '';
    return {
      name: f.name,
      number: f.number,
      type: f.type,
      typeName,
      repeated: f.label === 'LABEL_REPEATED',
      optional: oneof === `_${f.name}`,
      map: entry ? { key: kv('key'), value: kv('value') } : null,
    };
  });
}

/** The value names of an enum, in number order. */
export function enumValues(enumName: string): string[] {
  const raw = lookup(enumName, 'EnumDescriptorProto') as RawEnum;
  return [...raw.value].sort((a, b) => a.number - b.number).map((v) => v.name);
}
