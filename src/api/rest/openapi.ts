// GET /openapi.json: the OpenAPI 3.1 document, generated from the route table
// the app serves and from the same zod schemas the service validates and
// answers with (the run spec through its field descriptors, engine/spec/fields.ts;
// the DTOs from service/dto.ts; the error codes from service/errors.ts).
// Nothing here is written by hand twice.
import { z } from 'zod';
import { BUILTIN_NAMES } from '../../engine/data/reference.js';
import { RUN_SPEC_FIELDS, RUN_SPEC_JSON_SCHEMA, SPEC_RULES_JSON_SCHEMA } from '../../engine/spec.js';
import {
  ApiKeySchema,
  ArtifactSchema,
  DatasetSchema,
  ERRORS,
  ERROR_CODES,
  EventSchema,
  JobSchema,
  ModelSchema,
  RoundSchema,
  WebhookDeliverySchema,
  WebhookEndpointSchema,
  CallbackSecretSchema,
  type ErrorCode,
} from '../../service/index.js';
import { CREATE_WEBHOOK_SCHEMA } from './routes/webhooks.js';
import { pageOf, ref, type JsonSchema, type ParamDoc, type RouteDef } from './route.js';
type Doc = Record<string, unknown>;

function schemaOf(s: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const out = z.toJSONSchema(s, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  delete out.$schema;
  return out;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The builtin datasets the reference parser knows (engine/data/reference.ts), and nothing else after `builtin:`. */
const BUILTINS = BUILTIN_NAMES.map((n) => `builtin:${n}`).join(', ');
const ONLY_KNOWN_BUILTINS: JsonSchema = { not: { pattern: `^builtin:(?!(?:${BUILTIN_NAMES.map(escapeRegExp).join('|')})$)` } };

/**
 * The run spec as a client sends it, its properties the field descriptors' own
 * JSON Schemas, with the rules between fields (spec/rules.ts) as an `allOf`.
 */
function runSpecSchema(): JsonSchema {
  const properties = Object.fromEntries(RUN_SPEC_FIELDS.map((f) => [f.name, f.jsonSchema]));
  properties.dataset = { ...properties.dataset, ...ONLY_KNOWN_BUILTINS };
  return { ...RUN_SPEC_JSON_SCHEMA, properties, allOf: SPEC_RULES_JSON_SCHEMA };
}

/** A job's webhook target, beside the spec (not a run-spec field: run names do not change). */
const CALLBACK_URL: JsonSchema = {
  type: 'string',
  format: 'uri',
  description: "Where this job's events (round.committed, job.succeeded, job.failed, job.cancelled) are POSTed, signed with the tenant's callback secret (POST /v1/webhooks/callback-secret first). Its host must resolve only to public addresses unless the operator allows it",
};

/** The submit body: the run spec's fields, with the two references described as the service takes them. */
function submitSchema(): JsonSchema {
  const spec = runSpecSchema();
  const props = { ...(spec.properties as Record<string, JsonSchema>) };
  // At the API a job names its model and dataset: the CLI's defaults for them do not apply here.
  const { default: _m, ...model } = props.model as JsonSchema;
  const { default: _d, ...dataset } = props.dataset as JsonSchema;
  props.model = { ...model, description: 'Required. A zoo model name (lenet-300-100, lenet-N-M, conv-2/4/6, vgg-11/16, resnet-20), `model:<id>` or the bare id of an uploaded model' };
  props.dataset = { ...dataset, description: `Required. A dataset reference (${BUILTINS}, http(s)://…; file:// where the operator allows it), \`dataset:<id>\` or the bare id of a registered one` };
  const flat = { ...spec, properties: { ...props, callbackUrl: CALLBACK_URL }, required: [...((spec.required as string[] | undefined) ?? []), 'model', 'dataset'], description: 'The run spec, flat' };
  const nested = {
    type: 'object',
    description: 'The same, with the run-spec fields under `spec` (model and dataset beside it or inside it)',
    properties: { model: props.model, dataset: props.dataset, callbackUrl: CALLBACK_URL, spec: { ...spec, description: 'Run-spec fields' } },
    required: ['spec'],
    additionalProperties: false,
  };
  return { oneOf: [flat, nested] };
}

export function components(): Record<string, JsonSchema> {
  return {
    RunSpec: runSpecSchema(),
    SubmitJobRequest: submitSchema(),
    RegisterDatasetRequest: {
      type: 'object',
      properties: { reference: { type: 'string', minLength: 1, description: `${BUILTINS}, http(s)://… (file:// where the operator allows it)`, ...ONLY_KNOWN_BUILTINS } },
      required: ['reference'],
      additionalProperties: false,
    },
    Job: schemaOf(JobSchema, 'output'),
    JobPage: (() => {
      const page = pageOf('Job');
      const properties = { ...(page.properties as Record<string, JsonSchema>), next_cursor: { type: ['string', 'null'], deprecated: true, description: 'The old name of `nextCursor` (same value); removed in the next version' } };
      return { ...page, properties, required: [...(page.required as string[]), 'next_cursor'] };
    })(),
    Round: schemaOf(RoundSchema, 'output'),
    Artifact: schemaOf(ArtifactSchema, 'output'),
    ArtifactList: pageOf('Artifact'),
    Event: schemaOf(EventSchema, 'output'),
    Model: schemaOf(ModelSchema, 'output'),
    Dataset: schemaOf(DatasetSchema, 'output'),
    ApiKey: schemaOf(ApiKeySchema, 'output'),
    WebhookEndpoint: schemaOf(WebhookEndpointSchema, 'output'),
    WebhookDelivery: schemaOf(WebhookDeliverySchema, 'output'),
    CallbackSecret: schemaOf(CallbackSecretSchema, 'output'),
    CreateWebhookRequest: CREATE_WEBHOOK_SCHEMA,
    Error: {
      type: 'object',
      properties: {
        error: {
          type: 'object',
          properties: {
            code: { type: 'string', enum: [...ERROR_CODES], description: ERROR_CODES.map((c) => `${c} (${ERRORS[c].http}): ${ERRORS[c].description}`).join('\n') },
            message: { type: 'string' },
            field: { type: 'string', description: 'The request field at fault, when one is' },
          },
          required: ['code', 'message'],
          description: 'The first problem (what older clients read)',
        },
        errors: {
          type: 'array',
          description: 'Every problem of the request found in the same pass, the first being `error`; present when the error is about request fields',
          items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } }, required: ['field', 'message'] },
          minItems: 1,
        },
      },
      required: ['error'],
    },
  };
}

const openApiPath = (p: string) => p.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

function parameters(route: RouteDef): Doc[] {
  const p = (where: string, d: ParamDoc, required: boolean): Doc => ({ name: d.name, in: where, description: d.description, required, schema: d.schema ?? { type: 'string' } });
  return [
    ...(route.params ?? []).map((d) => p('path', d, true)),
    ...(route.query ?? []).map((d) => p('query', d, d.required ?? false)),
    ...(route.headers ?? []).map((d) => p('header', d, d.required ?? false)),
  ];
}

/**
 * The codes a route can answer with: its own list, plus what the app answers
 * for any route of its kind: INTERNAL anywhere; on /v1 routes INVALID_ARGUMENT
 * (query.ts refuses an unknown query parameter on every one); on JSON posts
 * PAYLOAD_TOO_LARGE (the body limit).
 */
function answerable(route: RouteDef): ErrorCode[] {
  const codes = new Set<ErrorCode>(route.errors);
  codes.add('INTERNAL');
  if (route.tag !== 'operations') codes.add('INVALID_ARGUMENT');
  if (route.method === 'post' && !route.rawBody) codes.add('PAYLOAD_TOO_LARGE');
  return ERROR_CODES.filter((c) => codes.has(c));
}

function responses(route: RouteDef): Doc {
  const out: Doc = {};
  for (const [status, r] of Object.entries(route.responses)) {
    out[status] = {
      description: r.description,
      ...(r.content ? { content: Object.fromEntries(Object.entries(r.content).map(([type, schema]) => [type, { schema }])) } : {}),
      ...(r.headers ? { headers: Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])) } : {}),
    };
  }
  // One entry per status; several codes can share it (409, 500).
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of answerable(route)) byStatus.set(ERRORS[code].http, [...(byStatus.get(ERRORS[code].http) ?? []), code]);
  for (const [status, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = { description: codes.join(' | '), content: { 'application/json': { schema: ref('Error') } } };
  }
  return out;
}

export function buildOpenApi(routes: RouteDef[], info: { version: string; serverUrl?: string }): Doc {
  const paths: Record<string, Doc> = {};
  for (const r of routes) {
    const op: Doc = {
      operationId: r.operationId,
      tags: [r.tag],
      summary: r.summary,
      ...(r.auth === false ? { security: [] } : {}),
      parameters: parameters(r),
      ...(r.body ? { requestBody: { required: r.body.required, content: Object.fromEntries(Object.entries(r.body.content).map(([t, schema]) => [t, { schema }])) } } : {}),
      responses: responses(r),
    };
    (paths[openApiPath(r.path)] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Ticketsmith',
      version: info.version,
      description:
        'Lottery-ticket iterative magnitude pruning (with rewinding) and L1 filter pruning as a service. Every /v1 call needs an API key: `Authorization: Bearer <key>` or `X-Api-Key: <key>`. ' +
        'Lists answer `{ items, nextCursor }` and take `cursor` and `limit`. A validation error answers `{ error, errors }`: `error` the first problem, `errors` all of them. ' +
        'A method a path does not take answers 405 METHOD_NOT_ALLOWED with an `Allow` header.',
    },
    ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
    security: [{ bearer: [] }, { apiKey: [] }],
    tags: [{ name: 'models' }, { name: 'datasets' }, { name: 'jobs' }, { name: 'artifacts' }, { name: 'webhooks' }, { name: 'operations' }],
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API key from `ticketsmith keys create`' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
      },
      schemas: components(),
    },
  };
}
