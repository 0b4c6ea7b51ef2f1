// The REST door: an express 5 app over a ServiceRuntime. Middleware order is
// the contract: request id → per-request log line and metrics → dashboard →
// the route table (operations routes, no key; then /v1 routes, each checking
// the API key before reading a JSON body) → 404 → error mapping through the
// one error table. Handlers only parse, call the service and shape the response.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import express, { type NextFunction, type Request, type Response } from 'express';
import { childLogger } from '../../runtime/logger.js';
import { authenticate, checkRateLimit, databaseReady, RateLimitedError, ServiceError, type ServiceRuntime } from '../../service/index.js';
import { dashboardRoutes } from '../../web/dashboard.js';
import { classify, sendError } from './errors.js';
import { renderMetrics } from '../../runtime/metrics.js';
import { HttpMetrics, registerServiceGauges } from './metrics.js';
import { buildOpenApi } from './openapi.js';
import { checkNoBody, checkParams, checkQuery } from './query.js';
import type { RouteDef } from './route.js';
import { artifactRoutes } from './routes/artifacts.js';
import { eventRoutes } from './routes/events.js';
import { jobRoutes } from './routes/jobs.js';
import { modelRoutes } from './routes/models.js';
import { webhookRoutes } from './routes/webhooks.js';

const log = childLogger({ module: 'rest' });

const VERSION = (() => {
  try {
    return String((JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown }).version ?? '0.0.0');
  } catch {
    return '0.0.0';
  }
})();

export interface RestOptions {
  /** SSE heartbeat interval (default 15 s). */
  sseHeartbeatMs?: number;
  /** JSON body limit (default 1 MiB; model uploads have their own, from config). */
  jsonLimit?: string;
  /** Serve the small dashboard at / (default true). */
  dashboard?: boolean;
  /** Aborted when the server starts shutting down: long-lived streams (SSE) end. */
  closing?: AbortSignal;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Where the API key is: `Authorization: Bearer <key>` or `X-Api-Key`. */
export function apiKeyOf(req: Request): string | null {
  const auth = req.get('authorization');
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1]! : null;
  }
  return req.get('x-api-key')?.trim() || null;
}

function operationsRoutes(rt: ServiceRuntime, metrics: HttpMetrics, api: () => RouteDef[]): RouteDef[] {
  let openapi: string | null = null;
  return [
    {
      method: 'get',
      path: '/healthz',
      operationId: 'health',
      tag: 'operations',
      summary: 'Liveness: the process answers and can recover by itself (a database restart in progress is not a failure)',
      auth: false,
      responses: { 200: { description: 'Up', content: { 'application/json': { type: 'object', properties: { status: { const: 'ok' } } } } } },
      errors: ['UNAVAILABLE'],
      async handler(_req, res) {
        if (rt.db.health?.().state === 'failed') throw new ServiceError('UNAVAILABLE', 'the embedded database could not be restarted');
        res.json({ status: 'ok' });
      },
    },
    {
      method: 'get',
      path: '/readyz',
      operationId: 'ready',
      tag: 'operations',
      summary: 'Readiness: the database answers',
      auth: false,
      responses: { 200: { description: 'Ready', content: { 'application/json': { type: 'object', properties: { status: { const: 'ready' } } } } } },
      errors: ['UNAVAILABLE'],
      async handler(_req, res) {
        // The supervisor knows before a query times out that the embedded server is being restarted.
        if (rt.db.health && rt.db.health().state !== 'up') throw new ServiceError('UNAVAILABLE', 'database unreachable');
        if (!(await databaseReady(rt.ctx))) throw new ServiceError('UNAVAILABLE', 'database unreachable');
        res.json({ status: 'ready' });
      },
    },
    {
      method: 'get',
      path: '/metrics',
      operationId: 'metrics',
      tag: 'operations',
      summary: 'Prometheus metrics: process, HTTP and gRPC requests by route/method and code, jobs by state, queue depth, rounds, training throughput, webhook deliveries',
      auth: false,
      responses: { 200: { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { type: 'string' } } } },
      errors: [],
      async handler(_req, res) {
        const { contentType, body } = await renderMetrics();
        res.type(contentType).send(body);
      },
    },
    {
      method: 'get',
      path: '/openapi.json',
      operationId: 'openapi',
      tag: 'operations',
      summary: 'This document',
      auth: false,
      responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { type: 'object' } } } },
      errors: [],
      async handler(_req, res) {
        openapi ??= JSON.stringify(buildOpenApi(api(), { version: VERSION }));
        res.type('application/json').send(openapi);
      },
    },
  ];
}

/** The routes the app serves, in one table (what /openapi.json describes). */
export function restRoutes(rt: ServiceRuntime, metrics: HttpMetrics, opts: RestOptions = {}): RouteDef[] {
  const all: RouteDef[] = [];
  registerServiceGauges(rt.ctx);
  all.push(
    ...operationsRoutes(rt, metrics, () => all),
    ...modelRoutes,
    ...jobRoutes,
    ...eventRoutes({ heartbeatMs: opts.sseHeartbeatMs ?? 15_000, closing: opts.closing }),
    ...artifactRoutes,
    ...webhookRoutes,
  );
  return all;
}

/** The app, its middleware in contract order (see the top of this file). */
export function createRestApp(rt: ServiceRuntime, opts: RestOptions = {}): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  const metrics = new HttpMetrics();
  const routes = restRoutes(rt, metrics, opts);

  app.use(requestLog(metrics));
  if (opts.dashboard !== false) mountDashboard(app);
  mountRoutes(app, rt, routes, opts);
  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new ServiceError('NOT_FOUND', `no route ${req.method} ${req.path}`));
  });
  app.use(sendServiceError);
  return app;
}

/** Gives each request an id (the client's, if well-formed), then one log line and one metrics sample when it closes. */
function requestLog(metrics: HttpMetrics): express.RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const start = process.hrtime.bigint();
    const given = req.get('x-request-id');
    const requestId = given && REQUEST_ID.test(given) ? given : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    res.on('close', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const route = req.route ? String((req.route as { path: unknown }).path) : 'unmatched';
      metrics.observe(req.method, route, res.statusCode, seconds);
      const line = {
        requestId,
        method: req.method,
        route,
        path: req.originalUrl.split('?')[0],
        status: res.statusCode,
        ms: Math.round(seconds * 1e4) / 10,
        ...(res.locals.tenant ? { tenant: res.locals.tenant as string } : {}),
        ...(res.locals.jobId ? { jobId: res.locals.jobId as string } : {}),
        ...(res.writableFinished ? {} : { aborted: true }),
      };
      const err: unknown = res.locals.error;
      if (err !== undefined) log.error({ ...line, err }, 'request failed');
      else log.info(line, 'request');
    });
    next();
  };
}

function mountDashboard(app: express.Express): void {
  for (const r of dashboardRoutes()) {
    app.get(r.path, (_req, res) => {
      res.setHeader('Content-Security-Policy', "default-src 'self'; style-src 'self' 'unsafe-inline'");
      res.type(r.type).send(r.body);
    });
  }
}

/** Every route of the table, in table order (operations routes first). */
function mountRoutes(app: express.Express, rt: ServiceRuntime, routes: RouteDef[], opts: RestOptions): void {
  const json = express.json({ limit: opts.jsonLimit ?? '1mb', type: ['application/json', 'application/*+json'] });
  // A path without parameters refuses other methods first, before a parameter route of another method could take
  // it (DELETE /v1/webhooks/callback-secret is 405, not DELETE /v1/webhooks/:id's 404).
  for (const path of new Set(routes.map((r) => r.path))) {
    if (!path.includes(':')) app.all(path, methodNotAllowed(routes, path, true));
  }
  for (const route of routes) app[route.method](route.path, ...routeHandlers(rt, route, json));
  for (const path of new Set(routes.map((r) => r.path))) app.all(path, methodNotAllowed(routes, path, false));
}

/** Methods a path takes, as `Allow` lists them (HEAD with GET, as express answers it). */
export function allowedMethods(routes: RouteDef[], path: string): string[] {
  const methods = new Set(routes.filter((r) => r.path === path).map((r) => r.method.toUpperCase()));
  if (methods.has('GET')) methods.add('HEAD');
  methods.add('OPTIONS');
  return ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].filter((m) => methods.has(m));
}

/**
 * A known path asked with a method it does not take is 405 with `Allow` (and
 * the error body), not 404; OPTIONS answers 204 with `Allow`. `passTaken`: a
 * method the path takes goes on to its route.
 */
function methodNotAllowed(routes: RouteDef[], path: string, passTaken: boolean): express.RequestHandler {
  const methods = allowedMethods(routes, path);
  const allow = methods.join(', ');
  return (req: Request, res: Response, next: NextFunction) => {
    if (passTaken && req.method !== 'OPTIONS' && methods.includes(req.method)) return next();
    res.setHeader('Allow', allow);
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next(new ServiceError('METHOD_NOT_ALLOWED', `${req.method} ${req.path}: this path takes ${allow}`));
  };
}

/** One route's chain: API key and rate limit (unless the route needs no key), JSON body for posts, then the handler. */
function routeHandlers(rt: ServiceRuntime, route: RouteDef, json: express.RequestHandler): express.RequestHandler[] {
  const needsKey = route.auth !== false;
  const handlers: express.RequestHandler[] = [];
  // The key is checked before the body is read: strangers get 401, not parse errors.
  if (needsKey) {
    handlers.push(async (req, res, next) => {
      const principal = await authenticate(rt.ctx, apiKeyOf(req));
      res.locals.tenant = principal.tenant;
      // Per key, counted in Postgres so every API process shares one limit; operations routes have no key and no limit.
      await checkRateLimit(rt.ctx, principal.keyId);
      next();
    });
  }
  if (route.method === 'post' && !route.rawBody) handlers.push(json);
  handlers.push(async (req, res) => {
    // Probes and scrapers (load balancers, Prometheus) add query strings of their own: operations routes ignore them.
    checkParams(route, req);
    if (route.tag !== 'operations') checkQuery(route, req);
    checkNoBody(route, req);
    await route.handler(req, res, { ctx: rt.ctx, tenant: needsKey ? (res.locals.tenant as string) : '' });
  });
  return handlers;
}

/** The error handler (express knows one by its four parameters): maps through the one error table. */
function sendServiceError(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  const { error, expected } = classify(err);
  if (!expected) res.locals.error = err;
  if (res.headersSent) {
    next(err);
    return;
  }
  if (error.code === 'UNAUTHENTICATED') res.setHeader('WWW-Authenticate', 'Bearer realm="ticketsmith"');
  if (error instanceof RateLimitedError) res.setHeader('Retry-After', String(error.retryAfterSeconds));
  // The client gets nothing internal, only the id that finds the logged cause.
  sendError(res, expected ? error : new ServiceError(error.code, `${error.message} (request id ${String(res.locals.requestId)})`));
}
