// gRPC server reflection as a standard client reads it, for v1 and v1alpha:
// a reflection client written here (grpc-js for the stream, protobufjs to
// decode descriptors) lists the services, fetches ticketsmith.v1.Compression's
// file and, by filename, every file it imports, checks that every type a file
// refers to is defined in the file or in a file it imports, builds a protobufjs
// Root from those descriptors alone, resolves every message and method of the
// service and google.protobuf.Struct, and makes real calls (ListJobs,
// RegisterDataset, whose answer carries a Struct) encoded and decoded with
// those types. The descriptors are also held against the .proto files.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync, type MethodDefinition, type ServiceDefinition } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import descriptorTypes from 'protobufjs/ext/descriptor/index.js';
import { startGrpcServer, type GrpcServerHandle } from '../../src/api/grpc/server.js';
import { PROTO_FILES, PROTO_ROOT } from '../../src/api/grpc/proto.js';
import { createApiKey, type ServiceRuntime } from '../../src/service/index.js';
import { startTestDb, type TestDb } from '../integration/fixtures/harness.js';

const LIMIT_MS = 120_000;
const VERSIONS = ['v1', 'v1alpha'] as const;

let t: TestDb;
let rt: ServiceRuntime;
let server: GrpcServerHandle;
let address: string;
let apiKey: string;

before(async () => {
  t = await startTestDb();
  rt = await t.open();
  server = await startGrpcServer(rt, { host: '127.0.0.1', port: 0 });
  address = `127.0.0.1:${server.port}`;
  apiKey = (await createApiKey(rt.ctx, 'acme')).key;
}, { timeout: LIMIT_MS });

after(async () => {
  await server?.stop();
  await t?.stop();
});

type Reply = {
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  list_services_response?: { service: { name: string }[] };
  all_extension_numbers_response?: { base_type_name: string; extension_number: number[] };
  error_response?: { error_code: number; error_message: string };
};

/** One reflection stream: each question waits for its answer (the protocol answers in order). */
class ReflectionClient {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<object, Reply>;
  private readonly waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];

  constructor(version: (typeof VERSIONS)[number]) {
    const proto = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), `../proto/grpc/reflection/${version}/reflection.proto`);
    const def = loadSync(proto, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
    const m = (def[`grpc.reflection.${version}.ServerReflection`] as ServiceDefinition).ServerReflectionInfo as MethodDefinition<object, Reply>;
    this.client = new grpc.Client(address, grpc.credentials.createInsecure());
    this.call = this.client.makeBidiStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, new grpc.Metadata(), { deadline: Date.now() + 60_000 });
    this.call.on('data', (r: Reply) => this.waiting.shift()?.resolve(r));
    this.call.on('error', (e: Error) => {
      for (const w of this.waiting.splice(0)) w.reject(e);
    });
  }

  ask(req: object): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.write({ host: '', ...req });
    });
  }

  /** The FileDescriptorProtos of a file request, decoded as plain objects (enum values by name). */
  async files(req: object): Promise<FileDesc[]> {
    const r = await this.ask(req);
    assert.equal(r.error_response, undefined, `${JSON.stringify(req)}: ${r.error_response?.error_message}`);
    const T = descriptorTypes.FileDescriptorProto;
    return r.file_descriptor_response!.file_descriptor_proto.map((b) => T.toObject(T.decode(b), { enums: String, arrays: true }) as FileDesc);
  }

  close() {
    this.call.end();
    this.client.close();
  }
}

interface FileDesc {
  name: string;
  package?: string;
  dependency: string[];
  messageType: MsgDesc[];
  enumType: EnumDesc[];
  service: { name: string; method: { name: string; inputType: string; outputType: string; clientStreaming?: boolean; serverStreaming?: boolean }[] }[];
}
interface FieldDesc {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName?: string;
  oneofIndex?: number;
  proto3Optional?: boolean;
}
interface MsgDesc {
  name: string;
  field: FieldDesc[];
  nestedType: MsgDesc[];
  enumType: EnumDesc[];
  oneofDecl: { name: string }[];
  options?: { mapEntry?: boolean };
}
interface EnumDesc {
  name: string;
  value: { name: string; number: number }[];
}

/** The fully qualified (leading dot) names a file defines. */
function definedNames(f: FileDesc): string[] {
  const pkg = f.package ? `.${f.package}` : '';
  const names: string[] = [];
  const msg = (m: MsgDesc, scope: string) => {
    names.push(`${scope}.${m.name}`);
    for (const e of m.enumType) names.push(`${scope}.${m.name}.${e.name}`);
    for (const n of m.nestedType) msg(n, `${scope}.${m.name}`);
  };
  for (const m of f.messageType) msg(m, pkg);
  for (const e of f.enumType) names.push(`${pkg}.${e.name}`);
  return names;
}

/** Every type a file names (fields, nested fields, method inputs and outputs). */
function referencedNames(f: FileDesc): string[] {
  const refs: string[] = [];
  const msg = (m: MsgDesc) => {
    for (const x of m.field) if (x.typeName) refs.push(x.typeName);
    for (const n of m.nestedType) msg(n);
  };
  for (const m of f.messageType) msg(m);
  for (const s of f.service) for (const m of s.method) refs.push(m.inputType, m.outputType);
  return refs;
}

/**
 * A protobufjs Root from FileDescriptorProtos, as a reflection client builds
 * one. (protobufjs's own Root.fromDescriptor leaves map fields as repeated
 * entry messages and drops proto3_optional, so maps and presence are read
 * here: a field whose type is a nested message marked map_entry is a map.)
 */
function fromDescriptor(files: FileDesc[]): protobuf.Root {
  const scalar = (type: string) => type.replace(/^TYPE_/, '').toLowerCase();
  const enumJson = (e: EnumDesc) => ({ values: Object.fromEntries(e.value.map((v) => [v.name, v.number])) });
  const messageJson = (m: MsgDesc, scope: string): protobuf.INamespace & protobuf.IType => {
    const entries = new Map(m.nestedType.filter((n) => n.options?.mapEntry).map((n) => [`${scope}.${m.name}.${n.name}`, n]));
    const fields: Record<string, protobuf.IField & { keyType?: string }> = {};
    for (const f of m.field) {
      const entry = f.typeName ? entries.get(f.typeName) : undefined;
      if (entry) {
        const [key, value] = entry.field;
        fields[f.name] = { id: f.number, keyType: scalar(key!.type), type: value!.typeName ?? scalar(value!.type) };
      } else {
        fields[f.name] = { id: f.number, type: f.typeName ?? scalar(f.type), ...(f.label === 'LABEL_REPEATED' ? { rule: 'repeated' } : {}), ...(f.proto3Optional ? { options: { proto3_optional: true } } : {}) };
      }
    }
    const oneofs = Object.fromEntries(m.oneofDecl.map((o, i) => [o.name, { oneof: m.field.filter((f) => f.oneofIndex === i).map((f) => f.name) }]));
    const nested: Record<string, object> = {};
    for (const n of m.nestedType) if (!n.options?.mapEntry) nested[n.name] = messageJson(n, `${scope}.${m.name}`);
    for (const e of m.enumType) nested[e.name] = enumJson(e);
    return { fields, oneofs, ...(Object.keys(nested).length ? { nested } : {}) } as protobuf.INamespace & protobuf.IType;
  };
  const root = new protobuf.Root();
  for (const f of files) {
    const ns = f.package ? root.define(f.package) : root;
    const scope = f.package ? `.${f.package}` : '';
    const nested: Record<string, object> = {};
    for (const m of f.messageType) nested[m.name] = messageJson(m, scope);
    for (const e of f.enumType) nested[e.name] = enumJson(e);
    for (const s of f.service) {
      nested[s.name] = {
        methods: Object.fromEntries(s.method.map((m) => [m.name, { requestType: m.inputType, responseType: m.outputType, requestStream: m.clientStreaming, responseStream: m.serverStreaming }])),
      };
    }
    ns.addJSON(nested as Record<string, protobuf.AnyNestedObject>);
  }
  root.resolveAll();
  return root;
}

function unary(path: string, type: { req: protobuf.Type; res: protobuf.Type }, body: object): Promise<protobuf.Message> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${apiKey}`);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (v: object) => Buffer.from(type.req.encode(type.req.fromObject(v)).finish()),
      (b: Buffer) => type.res.decode(b),
      body,
      md,
      { deadline: Date.now() + 30_000 },
      (err, res) => {
        client.close();
        if (err) reject(err);
        else resolve(res!);
      },
    );
  });
}

for (const version of VERSIONS) {
  describe(`reflection ${version}`, { timeout: LIMIT_MS }, () => {
    let rc: ReflectionClient;
    let files: FileDesc[] = [];
    let root: protobuf.Root;
    before(() => {
      rc = new ReflectionClient(version);
    });
    after(() => rc?.close());

    test('lists the contract, health and reflection services', async () => {
      const r = await rc.ask({ list_services: '*' });
      const names = r.list_services_response!.service.map((s) => s.name).sort();
      assert.deepEqual(names, ['grpc.health.v1.Health', 'grpc.reflection.v1.ServerReflection', 'grpc.reflection.v1alpha.ServerReflection', 'ticketsmith.v1.Compression']);
    });

    test('the service file and, by filename, each file it imports: true names, every dependency served', async () => {
      const first = await rc.files({ file_containing_symbol: 'ticketsmith.v1.Compression' });
      assert.equal(first[0]!.name, 'ticketsmith/v1/compression.proto');
      const byName = new Map<string, FileDesc>([[first[0]!.name, first[0]!]]);
      // Fetch each import by its name, as clients that cache per file do; bounded by the files there are.
      const queue = [...first[0]!.dependency];
      for (let i = 0; queue.length > 0 && i < 50; i++) {
        const name = queue.shift()!;
        if (byName.has(name)) continue;
        const got = await rc.files({ file_by_filename: name });
        assert.equal(got[0]!.name, name, 'the requested file comes first');
        byName.set(name, got[0]!);
        queue.push(...got[0]!.dependency);
      }
      assert.equal(queue.length, 0);
      assert.deepEqual([...byName.keys()].sort(), ['google/protobuf/struct.proto', 'ticketsmith/v1/compression.proto', 'ticketsmith/v1/resources.proto', 'ticketsmith/v1/spec.proto']);
      assert.deepEqual(byName.get('ticketsmith/v1/resources.proto')!.dependency, ['google/protobuf/struct.proto', 'ticketsmith/v1/spec.proto']);
      for (const f of byName.values()) {
        const visible = new Set([f, ...f.dependency.map((d) => byName.get(d)!)].flatMap(definedNames));
        for (const ref of referencedNames(f)) assert.ok(visible.has(ref), `${f.name} refers to ${ref}, which neither it nor its imports define`);
      }
      files = [...byName.values()];
    });

    test('a Root built from the descriptors alone resolves every message and method of Compression, and google.protobuf.Struct', () => {
      assert.ok(files.length > 0, 'the files were fetched');
      root = fromDescriptor(files);
      const svc = root.lookupService('ticketsmith.v1.Compression');
      assert.ok(svc.methodsArray.length >= 16, `${svc.methodsArray.length} methods`);
      const seen = new Set<string>();
      const walk = (type: protobuf.Type) => {
        if (seen.has(type.fullName)) return;
        seen.add(type.fullName);
        for (const f of type.fieldsArray) {
          f.resolve();
          if (f.resolvedType instanceof protobuf.Type) walk(f.resolvedType);
        }
      };
      for (const m of svc.methodsArray) {
        m.resolve();
        assert.ok(m.resolvedRequestType && m.resolvedResponseType, m.name);
        walk(m.resolvedRequestType);
        walk(m.resolvedResponseType);
      }
      for (const name of ['.ticketsmith.v1.RunSpec', '.ticketsmith.v1.Job', '.google.protobuf.Struct', '.google.protobuf.Value']) assert.ok(seen.has(name), name);
      const struct = root.lookupType('google.protobuf.Struct');
      assert.equal((struct.fields.fields as unknown as protobuf.MapField).keyType, 'string');
      assert.equal(struct.fields.fields!.resolvedType!.fullName, '.google.protobuf.Value');
      const value = root.lookupType('google.protobuf.Value');
      assert.deepEqual(value.oneofs.kind!.fieldsArray.map((f) => f.name), ['null_value', 'number_value', 'string_value', 'bool_value', 'struct_value', 'list_value']);
      const watch = svc.methods.WatchJob!;
      assert.ok(watch.responseStream && !watch.requestStream, 'WatchJob streams its answers');
      assert.ok(svc.methods.UploadModel!.requestStream, 'UploadModel is a client stream');
    });

    test('real calls encoded and decoded with the reflected types: ListJobs, RegisterDataset (a Struct in the answer)', async () => {
      assert.ok(root, 'the Root was built');
      const svc = root.lookupService('ticketsmith.v1.Compression');
      const types = (name: string) => {
        const m = svc.methods[name]!;
        m.resolve();
        return { req: m.resolvedRequestType!, res: m.resolvedResponseType! };
      };
      const jobs = (await unary('/ticketsmith.v1.Compression/ListJobs', types('ListJobs'), { page_size: 5 })).toJSON();
      assert.deepEqual(jobs.jobs ?? [], []);
      const ds = types('RegisterDataset').res.toObject(await unary('/ticketsmith.v1.Compression/RegisterDataset', types('RegisterDataset'), { reference: 'builtin:mnist' }), { defaults: false }) as {
        reference: string;
        shapes: { fields: Record<string, { number_value?: number; list_value?: { values: { number_value: number }[] } }> };
      };
      assert.equal(ds.reference, 'builtin:mnist');
      assert.equal(ds.shapes.fields.numClasses?.number_value, 10);
      assert.deepEqual(ds.shapes.fields.inputShape?.list_value?.values.map((v) => v.number_value), [28, 28, 1]);
    });

    test('unknown file, unknown symbol and extensions answer NOT_FOUND; a known message has no extension numbers', async () => {
      for (const req of [{ file_by_filename: 'ticketsmith_v1.proto' }, { file_containing_symbol: 'ticketsmith.v1.Nope' }, { file_containing_extension: { containing_type: 'ticketsmith.v1.Job', extension_number: 100 } }]) {
        const r = await rc.ask(req);
        assert.equal(r.error_response?.error_code, grpc.status.NOT_FOUND, JSON.stringify(req));
      }
      const r = await rc.ask({ all_extension_numbers_of_type: 'ticketsmith.v1.Job' });
      assert.deepEqual(r.all_extension_numbers_response, { base_type_name: 'ticketsmith.v1.Job', extension_number: [] });
      // A file already sent on this stream is not sent again as an import; the file asked for always is.
      const again = await rc.files({ file_by_filename: 'ticketsmith/v1/resources.proto' });
      assert.deepEqual(again.map((f) => f.name), ['ticketsmith/v1/resources.proto']);
    });
  });
}

describe('the descriptors match the .proto files', () => {
  test('every message of ticketsmith.v1, as served, has the fields protobufjs reads from the .proto files', async () => {
    const rc = new ReflectionClient('v1');
    try {
      const served = new Map<string, FileDesc>();
      for (const f of await rc.files({ file_containing_symbol: 'ticketsmith.v1.Compression' })) served.set(f.name, f);
      const fromDescriptors = fromDescriptor([...served.values()]);
      const fromSource = new protobuf.Root();
      fromSource.resolvePath = (_o, target) => (target.startsWith('/') ? target : join(PROTO_ROOT, target));
      fromSource.loadSync(PROTO_FILES, { keepCase: true }).resolveAll();
      const shape = (t: protobuf.Type) =>
        t.fieldsArray.map((f) => {
          f.resolve();
          const key = f instanceof protobuf.MapField ? f.keyType : '';
          return [f.name, f.id, f.repeated, f.resolvedType?.fullName ?? f.type, key, Boolean(f.options?.proto3_optional), f.partOf?.name ?? ''];
        });
      const methods = (s: protobuf.Service) =>
        s.methodsArray.map((m) => {
          m.resolve();
          return [m.name, m.resolvedRequestType!.fullName, m.resolvedResponseType!.fullName, Boolean(m.requestStream), Boolean(m.responseStream)];
        });
      let types = 0;
      const compare = (ns: protobuf.NamespaceBase) => {
        for (const n of ns.nestedArray) {
          if (n instanceof protobuf.Type) {
            types++;
            assert.deepEqual(shape(fromDescriptors.lookupType(n.fullName)), shape(n), n.fullName);
            compare(n);
          } else if (n instanceof protobuf.Enum) {
            assert.deepEqual({ ...fromDescriptors.lookupEnum(n.fullName).values }, { ...n.values }, n.fullName);
          } else if (n instanceof protobuf.Service) {
            assert.deepEqual(methods(fromDescriptors.lookupService(n.fullName)), methods(n), n.fullName);
          }
        }
      };
      compare(fromSource.lookup('ticketsmith.v1') as protobuf.Namespace);
      assert.ok(types > 30, `${types} messages compared`);
    } finally {
      rc.close();
    }
  });
});
