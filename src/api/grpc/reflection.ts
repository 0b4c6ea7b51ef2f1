// Standard gRPC server reflection, v1 and v1alpha (grpcurl, Postman and
// Python clients speak one or the other; the two differ only in package
// name), serving the real file descriptors of everything this server offers:
// the ticketsmith.v1 contract as the files under proto/ (with
// google/protobuf/struct.proto, which it imports), the health service and
// reflection itself, each under its true import name (descriptors.ts).
//
// Answers file_by_filename, file_containing_symbol and list_services;
// file_containing_extension is NOT_FOUND and all_extension_numbers_of_type
// an empty list, since no served file declares an extension. A file comes
// with its transitive imports, except imports already sent on the same
// stream (the requested file itself is always sent), as grpc-go does.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync, type MethodDefinition, type ServiceDefinition } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { childLogger } from '../../runtime/logger.js';
import { buildFileDescriptors, type FileDescriptor, type ProtoSource } from './descriptors.js';
import { PROTO_ROOT, PROTO_FILES } from './proto.js';

const log = childLogger({ module: 'grpc-reflection' });

export const REFLECTION_VERSIONS = ['v1', 'v1alpha'] as const;
export type ReflectionVersion = (typeof REFLECTION_VERSIONS)[number];

const HEALTH_FILE = 'grpc/health/v1/health.proto';
const reflectionFile = (v: ReflectionVersion) => `grpc/reflection/${v}/reflection.proto`;

/** Where @grpc/reflection keeps the reflection protos (it ships them; the server needs them for its own definitions). */
function reflectionProtoDir(): string {
  return join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '../proto');
}

function protoFilesUnder(dir: string): ProtoSource[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.proto'))
    .map((e) => {
      const path = join(e.parentPath, e.name);
      return { name: relative(dir, path).split(sep).join('/'), path };
    });
}

/** Every .proto file the server serves, by the name it is imported by. */
export function servedProtoSources(): ProtoSource[] {
  return [
    ...protoFilesUnder(PROTO_ROOT),
    { name: HEALTH_FILE, path: healthProtoPath },
    ...REFLECTION_VERSIONS.map((v) => ({ name: reflectionFile(v), path: join(reflectionProtoDir(), reflectionFile(v)) })),
  ];
}

/** The descriptors reflection serves, imports before importers. */
export function servedFileDescriptors(): FileDescriptor[] {
  return buildFileDescriptors(servedProtoSources(), [...PROTO_FILES, HEALTH_FILE, ...REFLECTION_VERSIONS.map(reflectionFile)]);
}

/** The request and response as proto-loader hands them over (keepCase, oneofs named). */
interface ReflectionRequest {
  host?: string;
  message_request?: 'file_by_filename' | 'file_containing_symbol' | 'file_containing_extension' | 'all_extension_numbers_of_type' | 'list_services';
  file_by_filename?: string;
  file_containing_symbol?: string;
  file_containing_extension?: { containing_type?: string; extension_number?: number };
  all_extension_numbers_of_type?: string;
  list_services?: string;
}

class ReflectionError extends Error {
  constructor(readonly code: grpc.status, message: string) {
    super(message);
  }
}

/** The index reflection answers from: files by name, symbols to their file, the services offered. */
export class ReflectionIndex {
  private readonly files = new Map<string, FileDescriptor>();
  private readonly symbols = new Map<string, FileDescriptor>();
  private readonly messages = new Set<string>();
  readonly services: string[];

  constructor(files: FileDescriptor[]) {
    for (const f of files) {
      this.files.set(f.name, f);
      for (const s of f.symbols) this.symbols.set(s, f);
      for (const m of f.messages) this.messages.add(m);
    }
    this.services = files.flatMap((f) => f.services);
  }

  /** The file and its transitive imports not yet in `sent` (breadth first); marks them sent. */
  private withImports(file: FileDescriptor, sent: Set<string>): Buffer[] {
    const out: Buffer[] = [];
    const queue = [file];
    const seen = new Set<string>();
    while (queue.length > 0) {
      const f = queue.shift()!;
      if (seen.has(f.name)) continue;
      seen.add(f.name);
      if (out.length === 0 || !sent.has(f.name)) {
        sent.add(f.name);
        out.push(Buffer.from(f.bytes));
      }
      for (const dep of f.dependency) {
        const d = this.files.get(dep);
        if (d) queue.push(d);
      }
    }
    return out;
  }

  answer(req: ReflectionRequest, sent: Set<string>): Record<string, unknown> {
    const base = { valid_host: req.host ?? '', original_request: req };
    try {
      switch (req.message_request) {
        case 'list_services':
          return { ...base, list_services_response: { service: this.services.map((name) => ({ name })) } };
        case 'file_by_filename': {
          const name = req.file_by_filename ?? '';
          const file = this.files.get(name);
          if (!file) throw new ReflectionError(grpc.status.NOT_FOUND, `file not found: ${name}`);
          return { ...base, file_descriptor_response: { file_descriptor_proto: this.withImports(file, sent) } };
        }
        case 'file_containing_symbol': {
          const symbol = (req.file_containing_symbol ?? '').replace(/^\./, '');
          const file = this.symbols.get(symbol);
          if (!file) throw new ReflectionError(grpc.status.NOT_FOUND, `symbol not found: ${symbol}`);
          return { ...base, file_descriptor_response: { file_descriptor_proto: this.withImports(file, sent) } };
        }
        case 'file_containing_extension': {
          const ext = req.file_containing_extension ?? {};
          throw new ReflectionError(grpc.status.NOT_FOUND, `no extension ${ext.extension_number ?? ''} of ${ext.containing_type ?? ''}: no served file declares extensions`);
        }
        case 'all_extension_numbers_of_type': {
          const type = (req.all_extension_numbers_of_type ?? '').replace(/^\./, '');
          if (!this.messages.has(type)) throw new ReflectionError(grpc.status.NOT_FOUND, `message type not found: ${type}`);
          return { ...base, all_extension_numbers_response: { base_type_name: type, extension_number: [] } };
        }
        default:
          throw new ReflectionError(grpc.status.INVALID_ARGUMENT, 'the request names no message_request');
      }
    } catch (e) {
      if (e instanceof ReflectionError) return { ...base, error_response: { error_code: e.code, error_message: e.message } };
      log.error({ err: e }, 'reflection request failed');
      return { ...base, error_response: { error_code: grpc.status.INTERNAL, error_message: 'reflection failed on the server' } };
    }
  }
}

function serviceDefinition(v: ReflectionVersion): ServiceDefinition {
  const def = loadSync(join(reflectionProtoDir(), reflectionFile(v)), { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true });
  return def[`grpc.reflection.${v}.ServerReflection`] as ServiceDefinition;
}

/** Adds grpc.reflection.v1 and v1alpha ServerReflection to the server, describing `index`. */
export function addReflection(server: grpc.Server, index: ReflectionIndex = new ReflectionIndex(servedFileDescriptors())): void {
  for (const v of REFLECTION_VERSIONS) {
    const def = serviceDefinition(v);
    const method = def.ServerReflectionInfo as MethodDefinition<ReflectionRequest, Record<string, unknown>>;
    if (!method?.requestStream || !method.responseStream) throw new Error(`grpc.reflection.${v}: ServerReflectionInfo is not a bidi stream`);
    server.addService(def, {
      ServerReflectionInfo: (call: grpc.ServerDuplexStream<ReflectionRequest, Record<string, unknown>>) => {
        // Per stream: the files this client already has, so imports are not sent twice.
        const sent = new Set<string>();
        call.on('data', (req: ReflectionRequest) => call.write(index.answer(req, sent)));
        call.on('end', () => call.end());
        call.on('error', (err) => log.debug({ err, version: v }, 'reflection stream ended with an error'));
      },
    });
  }
}
