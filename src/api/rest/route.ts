// One REST route = one RouteDef: its express path, its handler, and what the
// OpenAPI document says about it. The app registers handlers from the same
// table the document is generated from, so the two cannot drift apart.
import type { Request, Response } from 'express';
import { invalid, PAGE_DEFAULT, PAGE_MAX, type ErrorCode, type PageQuery, type ServiceContext } from '../../service/index.js';

/** A JSON Schema object (as z.toJSONSchema writes them) or a `$ref` to a component. */
export type JsonSchema = Record<string, unknown>;

export const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

/** One page of a list: `{ items: [...], nextCursor }`, the shape every list answers with. */
export const pageOf = (name: string): JsonSchema => ({
  type: 'object',
  properties: {
    items: { type: 'array', items: ref(name) },
    nextCursor: { type: ['string', 'null'], description: 'Pass as `cursor` for the next page; null on the last page' },
  },
  required: ['items', 'nextCursor'],
});

/** The two query parameters of every list. */
export const PAGE_PARAMS: ParamDoc[] = [
  { name: 'cursor', description: '`nextCursor` of the previous page', schema: { type: 'string', minLength: 1 } },
  { name: 'limit', description: `Page size (1-${PAGE_MAX}, default ${PAGE_DEFAULT})`, schema: { type: 'integer', minimum: 1, maximum: PAGE_MAX, default: PAGE_DEFAULT } },
];

/** A list request's cursor and limit (checked in form by query.ts, in meaning by the service). */
export function pageQuery(req: Request): PageQuery {
  return { cursor: queryString(req, 'cursor'), limit: queryString(req, 'limit') };
}

/** A `{ items: [...] }` list of one component schema (a bounded list that is not paged, e.g. a page of events). */
export const itemsOf = (name: string): JsonSchema => ({ type: 'object', properties: { items: { type: 'array', items: ref(name) } }, required: ['items'] });

export interface ParamDoc {
  name: string;
  description: string;
  schema?: JsonSchema;
  required?: boolean;
}

export interface ResponseDoc {
  description: string;
  /** Media type → schema. */
  content?: Record<string, JsonSchema>;
  headers?: Record<string, string>;
}

export interface RouteCall {
  ctx: ServiceContext;
  tenant: string;
}

export interface RouteDef {
  method: 'get' | 'post' | 'delete';
  /** Express path, e.g. `/v1/jobs/:id`. */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  /** Needs an API key (default true). */
  auth?: boolean;
  /** Parses its own body (multipart, raw archives) instead of the JSON parser. */
  rawBody?: boolean;
  params?: ParamDoc[];
  query?: ParamDoc[];
  headers?: ParamDoc[];
  body?: { required: boolean; content: Record<string, JsonSchema>; description?: string };
  responses: Record<number, ResponseDoc>;
  /** Error codes this route can answer with (documented from the error table). */
  errors: ErrorCode[];
  handler(req: Request, res: Response, call: RouteCall): Promise<void>;
}

/** Codes every authenticated route can answer with. */
export const COMMON_ERRORS: ErrorCode[] = ['UNAUTHENTICATED', 'RATE_LIMITED', 'INTERNAL', 'UNAVAILABLE'];

/** One query parameter as a string; repeating it is a client error, not a silent pick. */
export function queryString(req: Request, name: string): string | undefined {
  const v: unknown = (req.query as Record<string, unknown>)[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(name, `${name}: give it once, as a plain value`);
  return v;
}

/** A path parameter; express decodes it (bad percent-encoding is a 400 before we get here). */
export function pathParam(req: Request, name: string): string {
  const v = (req.params as Record<string, string | undefined>)[name];
  if (v === undefined) throw invalid(name, `${name}: missing from the path`);
  return v;
}

/** Lets the request log line name the job a request was about. */
export function tagJob(res: Response, jobId: string): void {
  res.locals.jobId = jobId;
}
