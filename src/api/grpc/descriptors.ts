// The file descriptors server reflection serves: one FileDescriptorProto per
// .proto file, under the name it is imported by (`ticketsmith/v1/spec.proto`,
// `google/protobuf/struct.proto`) and with the dependencies its `import` lines
// name, written the way protoc writes them, so a reflection client (grpcurl,
// Postman, Python's descriptor pool) can rebuild the contract from them alone.
//
// Built when the server starts from the .proto files themselves (protobufjs
// parses; nothing is generated or committed), so a field added to the
// contract is served without a regeneration step. What protoc does that is
// copied here, because clients rely on it: type references are fully
// qualified (`.ticketsmith.v1.Model`); every field has its json_name; a map
// field refers to a nested `<FieldName>Entry` message marked map_entry;
// proto3 `optional` fields are in synthetic oneofs, listed after the real
// oneofs; proto3 files say `syntax = "proto3"`.
//
// Not handled, because no served file uses them: extensions, groups, custom
// options and editions (a file declaring an edition is refused at start).
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import descriptorTypes from 'protobufjs/ext/descriptor/index.js';

/** A .proto file: the name it is imported by, and where it is on disk. */
export interface ProtoSource {
  name: string;
  path: string;
}

/** A FileDescriptorProto as a plain object (descriptor.proto's fields, camelCase), and its encoding. */
export interface FileDescriptor {
  name: string;
  package: string;
  dependency: string[];
  /** Fully qualified names (no leading dot) of what the file defines: messages (nested too), enums, services, methods, fields. */
  symbols: string[];
  services: string[];
  /** Fully qualified names of its messages, nested ones included. */
  messages: string[];
  proto: Record<string, unknown>;
  bytes: Uint8Array;
}

const { Root, Type, Enum, Service, MapField, parse, common } = protobuf;
type PbType = InstanceType<typeof Type>;
type PbEnum = InstanceType<typeof Enum>;
type PbService = InstanceType<typeof Service>;
type PbField = PbType['fieldsArray'][number];
type Options = Record<string, unknown> | undefined;

const SCALARS: Record<string, string> = {
  double: 'TYPE_DOUBLE', float: 'TYPE_FLOAT', int64: 'TYPE_INT64', uint64: 'TYPE_UINT64', int32: 'TYPE_INT32',
  fixed64: 'TYPE_FIXED64', fixed32: 'TYPE_FIXED32', bool: 'TYPE_BOOL', string: 'TYPE_STRING', bytes: 'TYPE_BYTES',
  uint32: 'TYPE_UINT32', sfixed32: 'TYPE_SFIXED32', sfixed64: 'TYPE_SFIXED64', sint32: 'TYPE_SINT32', sint64: 'TYPE_SINT64',
};

/** protoc's json_name: underscores dropped, the letter after each one upper-cased. */
export function jsonName(name: string): string {
  return name.replace(/_+([a-zA-Z0-9]?)/g, (_m, c: string) => c.toUpperCase());
}

/** protoc's name for a map field's entry message: `filter_fractions` → `FilterFractionsEntry`. */
export function mapEntryName(field: string): string {
  const camel = jsonName(field);
  return `${camel.charAt(0).toUpperCase()}${camel.slice(1)}Entry`;
}

/** protobufjs keeps option names as written (snake_case); descriptor.proto's JSON names are camelCase. */
function options(kind: keyof typeof descriptorTypes, raw: Options, drop: string[] = []): Record<string, unknown> | undefined {
  if (!raw) return undefined;
  const kept = Object.entries(raw).filter(([k]) => !k.startsWith('(') && !drop.includes(k));
  if (kept.length === 0) return undefined;
  const type = descriptorTypes[kind] as InstanceType<typeof Type>;
  const msg = type.toObject(type.fromObject(Object.fromEntries(kept.map(([k, v]) => [jsonName(k), v]))));
  return Object.keys(msg).length > 0 ? msg : undefined;
}

const ref = (fullName: string) => (fullName.startsWith('.') ? fullName : `.${fullName}`);

class FileBuilder {
  readonly symbols: string[] = [];
  readonly messages: string[] = [];

  /** `snake` rewrites field and oneof names (protobufjs's bundled well-known types carry them camelCased). */
  constructor(private readonly snake: boolean) {}

  private fieldName(name: string): string {
    return this.snake ? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : name;
  }

  field(f: PbField, oneofIndex: Map<string, number>): Record<string, unknown> {
    const name = this.fieldName(f.name);
    const out: Record<string, unknown> = { name, number: f.id, jsonName: jsonName(name) };
    if (f instanceof MapField) {
      Object.assign(out, { label: 'LABEL_REPEATED', type: 'TYPE_MESSAGE', typeName: ref(`${f.parent!.fullName}.${mapEntryName(name)}`) });
    } else {
      f.resolve();
      const resolved = f.resolvedType;
      const type = resolved instanceof Enum ? 'TYPE_ENUM' : resolved instanceof Type ? 'TYPE_MESSAGE' : SCALARS[f.type];
      if (!type) throw new Error(`${f.fullName}: unsupported field type ${f.type}`);
      out.label = f.repeated ? 'LABEL_REPEATED' : f.required ? 'LABEL_REQUIRED' : 'LABEL_OPTIONAL';
      out.type = type;
      if (resolved) out.typeName = ref(resolved.fullName);
    }
    if (f.partOf) out.oneofIndex = oneofIndex.get(f.partOf.name);
    if (f.options?.proto3_optional) out.proto3Optional = true;
    if (typeof f.options?.json_name === 'string') out.jsonName = f.options.json_name;
    const opts = options('FieldOptions', f.options, ['proto3_optional', 'json_name', 'default']);
    if (opts) out.options = opts;
    return out;
  }

  /** The map entry message protoc synthesises for a map field. */
  private mapEntry(f: InstanceType<typeof MapField>, owner: string): Record<string, unknown> {
    const name = mapEntryName(this.fieldName(f.name));
    this.messages.push(`${owner}.${name}`);
    f.resolve();
    const value = f.resolvedType;
    const valueField: Record<string, unknown> = { name: 'value', number: 2, label: 'LABEL_OPTIONAL', jsonName: 'value' };
    if (value) Object.assign(valueField, { type: value instanceof Enum ? 'TYPE_ENUM' : 'TYPE_MESSAGE', typeName: ref(value.fullName) });
    else valueField.type = SCALARS[f.type];
    return {
      name,
      field: [{ name: 'key', number: 1, label: 'LABEL_OPTIONAL', type: SCALARS[f.keyType], jsonName: 'key' }, valueField],
      options: { mapEntry: true },
    };
  }

  message(t: PbType): Record<string, unknown> {
    const full = t.fullName.slice(1);
    this.symbols.push(full);
    this.messages.push(full);
    // Real oneofs first, then the synthetic ones of proto3 `optional` fields, as protoc orders them.
    const synthetic = (o: { fieldsArray: PbField[] }) => o.fieldsArray.length === 1 && Boolean(o.fieldsArray[0]!.options?.proto3_optional);
    const oneofs = [...t.oneofsArray.filter((o) => !synthetic(o)), ...t.oneofsArray.filter(synthetic)];
    const oneofIndex = new Map(oneofs.map((o, i) => [o.name, i]));
    const fields = t.fieldsArray.map((f) => {
      this.symbols.push(`${full}.${this.fieldName(f.name)}`);
      return this.field(f, oneofIndex);
    });
    const nestedType: Record<string, unknown>[] = [];
    const enumType: Record<string, unknown>[] = [];
    for (const n of t.nestedArray) {
      if (n instanceof Type) nestedType.push(this.message(n));
      else if (n instanceof Enum) enumType.push(this.enumeration(n));
      else throw new Error(`${n.fullName}: unsupported nested definition`);
    }
    for (const f of t.fieldsArray) if (f instanceof MapField) nestedType.push(this.mapEntry(f, full));
    const out: Record<string, unknown> = { name: t.name, field: fields, nestedType, enumType, oneofDecl: oneofs.map((o) => ({ name: this.fieldName(o.name) })) };
    const reserved = t.reserved ?? [];
    // protobufjs's ranges end inclusive; DescriptorProto's message ranges end exclusive.
    out.reservedRange = reserved.filter((r): r is number[] => Array.isArray(r)).map(([start, end]) => ({ start, end: (end ?? start!) + 1 }));
    out.reservedName = reserved.filter((r): r is string => typeof r === 'string');
    const opts = options('MessageOptions', t.options);
    if (opts) out.options = opts;
    return out;
  }

  enumeration(e: PbEnum): Record<string, unknown> {
    this.symbols.push(e.fullName.slice(1));
    const out: Record<string, unknown> = { name: e.name, value: Object.entries(e.values).map(([name, number]) => ({ name, number })) };
    const reserved = e.reserved ?? [];
    out.reservedRange = reserved.filter((r): r is number[] => Array.isArray(r)).map(([start, end]) => ({ start, end: end ?? start }));
    out.reservedName = reserved.filter((r): r is string => typeof r === 'string');
    const opts = options('EnumOptions', e.options);
    if (opts) out.options = opts;
    return out;
  }

  service(s: PbService): Record<string, unknown> {
    const full = s.fullName.slice(1);
    this.symbols.push(full);
    const method = s.methodsArray.map((m) => {
      m.resolve();
      this.symbols.push(`${full}.${m.name}`);
      const out: Record<string, unknown> = { name: m.name, inputType: ref(m.resolvedRequestType!.fullName), outputType: ref(m.resolvedResponseType!.fullName) };
      if (m.requestStream) out.clientStreaming = true;
      if (m.responseStream) out.serverStreaming = true;
      const opts = options('MethodOptions', m.options);
      if (opts) out.options = opts;
      return out;
    });
    const out: Record<string, unknown> = { name: s.name, method };
    const opts = options('ServiceOptions', s.options);
    if (opts) out.options = opts;
    return out;
  }
}

interface FileHead {
  name: string;
  pkg: string;
  dependency: string[];
  syntax: string | undefined;
  fileOptions: Options;
  /** Which definitions belong to this file. */
  owns: (obj: { filename?: string | null }) => boolean;
  snake: boolean;
}

function finish(head: FileHead, root: InstanceType<typeof Root>): FileDescriptor {
  const b = new FileBuilder(head.snake);
  const ns = head.pkg ? root.lookup(head.pkg) : root;
  const items = ns && 'nestedArray' in ns ? (ns as InstanceType<typeof protobuf.Namespace>).nestedArray.filter((n) => head.owns(n)) : [];
  const proto: Record<string, unknown> = {
    name: head.name,
    package: head.pkg || undefined,
    dependency: head.dependency,
    messageType: items.filter((n): n is PbType => n instanceof Type).map((t) => b.message(t)),
    enumType: items.filter((n): n is PbEnum => n instanceof Enum).map((e) => b.enumeration(e)),
    service: items.filter((n): n is PbService => n instanceof Service).map((s) => b.service(s)),
    syntax: head.syntax,
  };
  const opts = options('FileOptions', head.fileOptions);
  if (opts) proto.options = opts;
  const T = descriptorTypes.FileDescriptorProto;
  const bytes = T.encode(T.fromObject(proto)).finish();
  const services = (proto.service as { name: string }[]).map((s) => (head.pkg ? `${head.pkg}.${s.name}` : s.name));
  return { name: head.name, package: head.pkg, dependency: head.dependency, symbols: b.symbols, services, messages: b.messages, proto, bytes };
}

/**
 * The descriptors of `entries` and everything they import, dependencies
 * before the files that import them. `sources` says where each file named by
 * an entry or an import is (files under `google/protobuf/` come from the
 * well-known types protobufjs bundles).
 */
export function buildFileDescriptors(sources: readonly ProtoSource[], entries: readonly string[]): FileDescriptor[] {
  const byName = new Map(sources.map((s) => [s.name, s.path]));
  const nameOf = new Map(sources.map((s) => [s.path, s.name]));
  const root = new Root();
  root.resolvePath = (_origin, target) => {
    if (nameOf.has(target)) return target;
    const path = byName.get(target);
    if (!path) throw new Error(`import "${target}" is not among the proto sources`);
    return path;
  };
  root.loadSync([...entries], { keepCase: true });
  root.resolveAll();

  const heads = new Map<string, FileHead>();
  for (const file of root.files) {
    const name = nameOf.get(file) ?? file;
    const bundled = (common as unknown as { get(n: string): { nested?: Record<string, unknown> } | null }).get(name);
    if (!nameOf.has(file) && bundled) {
      // A well-known type: protobufjs bundles it as JSON with camelCased field names and no source file.
      heads.set(name, { name, pkg: 'google.protobuf', dependency: [], syntax: 'proto3', fileOptions: undefined, owns: () => true, snake: true });
      continue;
    }
    const source = readFileSync(file, 'utf8');
    if (/^\s*edition\s*=/m.test(source)) throw new Error(`${name}: editions are not supported by the descriptor builder`);
    const parsed = parse(source, new Root(), { keepCase: true });
    const pkg = parsed.package ?? '';
    const fileNs = pkg ? parsed.root.lookup(pkg) : parsed.root;
    heads.set(name, {
      name,
      pkg,
      dependency: [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])],
      syntax: /^\s*syntax\s*=\s*["']proto3["']/m.test(source) ? 'proto3' : undefined,
      fileOptions: fileNs?.options,
      owns: (obj) => obj.filename === file,
      snake: false,
    });
  }

  const built = new Map<string, FileDescriptor>();
  const visit = (name: string, path: string[]) => {
    if (built.has(name)) return;
    if (path.includes(name)) throw new Error(`import cycle: ${[...path, name].join(' → ')}`);
    const head = heads.get(name);
    if (!head) throw new Error(`${name} was not loaded`);
    for (const dep of head.dependency) visit(dep, [...path, name]);
    if (head.snake) {
      const wkt = Root.fromJSON((common as unknown as { get(n: string): protobuf.INamespace }).get(name));
      wkt.resolveAll();
      built.set(name, finish(head, wkt));
    } else {
      built.set(name, finish(head, root));
    }
  };
  for (const e of entries) visit(e, []);
  return [...built.values()];
}
