// One REST route = one RouteDef: its express path, its handler, and what the
// OpenAPI document says about it. The app registers handlers from the same
// table the document is generated from, so the two cannot drift apart.
import type { Request, Response } from 'express';
import { invalid, type ErrorCode, type ServiceContext } from '../../service/index.js';

/** A JSON Schema object (as z.toJSONSchema writes them) or a `$ref` to a component. */
export type JsonSchema = Record<string, unknown>;

export const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

/** A `{ items: [...] }` list of one component schema. */
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
