// /v1/webhooks: the tenant's callback secret (rotated, shown once), its
// registered endpoints (created with their secret shown once, listed,
// deleted) and the delivery log, with status, attempts and the last answer.
import { createWebhook, deleteWebhook, DELIVERY_STATES, listDeliveries, listWebhooks, rotateCallbackSecret, WEBHOOK_EVENTS } from '../../../service/index.js';
import { COMMON_ERRORS, PAGE_PARAMS, pageOf, pageQuery, pathParam, queryString, ref, type RouteDef } from '../route.js';

export const webhookRoutes: RouteDef[] = [
  {
    method: 'post',
    path: '/v1/webhooks/callback-secret',
    operationId: 'rotateCallbackSecret',
    tag: 'webhooks',
    summary: "Create or replace the secret that signs jobs' callbackUrl deliveries (shown in this answer only; later attempts use the new one)",
    responses: { 201: { description: 'The new secret', content: { 'application/json': ref('CallbackSecret') } } },
    errors: [...COMMON_ERRORS],
    async handler(_req, res, { ctx, tenant }) {
      res.status(201).json(await rotateCallbackSecret(ctx, tenant));
    },
  },
  {
    method: 'post',
    path: '/v1/webhooks',
    operationId: 'createWebhook',
    tag: 'webhooks',
    summary: 'Register an endpoint for events of all your jobs (its URL passes the outbound-address rules; its secret is shown in this answer only)',
    body: { required: true, content: { 'application/json': ref('CreateWebhookRequest') } },
    responses: { 201: { description: 'Registered', content: { 'application/json': ref('WebhookEndpoint') }, headers: { Location: 'The endpoint URL' } } },
    errors: ['INVALID_ARGUMENT', 'QUOTA_EXCEEDED', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      const endpoint = await createWebhook(ctx, tenant, req.body);
      res.setHeader('Location', `/v1/webhooks/${endpoint.id}`);
      res.status(201).json(endpoint);
    },
  },
  {
    method: 'get',
    path: '/v1/webhooks',
    operationId: 'listWebhooks',
    tag: 'webhooks',
    summary: "The tenant's endpoints, newest first (secrets are never listed)",
    query: PAGE_PARAMS,
    responses: { 200: { description: 'One page', content: { 'application/json': pageOf('WebhookEndpoint') } } },
    errors: ['INVALID_ARGUMENT', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      res.json(await listWebhooks(ctx, tenant, pageQuery(req)));
    },
  },
  {
    method: 'get',
    path: '/v1/webhooks/deliveries',
    operationId: 'listWebhookDeliveries',
    tag: 'webhooks',
    summary: 'Deliveries (job callbacks and endpoints), newest first: status, attempts, the last answer',
    query: [
      { name: 'jobId', description: "Only this job's", schema: { type: 'string', format: 'uuid' } },
      { name: 'status', description: 'Only deliveries in this state', schema: { type: 'string', enum: [...DELIVERY_STATES] } },
      ...PAGE_PARAMS,
    ],
    responses: { 200: { description: 'One page', content: { 'application/json': pageOf('WebhookDelivery') } } },
    errors: ['INVALID_ARGUMENT', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      res.json(
        await listDeliveries(ctx, tenant, {
          jobId: queryString(req, 'jobId'),
          status: queryString(req, 'status'),
          ...pageQuery(req),
        }),
      );
    },
  },
  {
    method: 'delete',
    path: '/v1/webhooks/:id',
    operationId: 'deleteWebhook',
    tag: 'webhooks',
    summary: 'Delete an endpoint (its deliveries not yet sent are dropped)',
    params: [{ name: 'id', description: 'Endpoint id', schema: { type: 'string', format: 'uuid' } }],
    responses: { 204: { description: 'Deleted' } },
    errors: ['NOT_FOUND', ...COMMON_ERRORS],
    async handler(req, res, { ctx, tenant }) {
      await deleteWebhook(ctx, tenant, pathParam(req, 'id'));
      res.status(204).end();
    },
  },
];

/** The create body, for the OpenAPI document. */
export const CREATE_WEBHOOK_SCHEMA = {
  type: 'object',
  properties: {
    url: { type: 'string', format: 'uri', description: 'http(s) URL whose host resolves only to public addresses (or the operator allows it)' },
    events: { type: 'array', items: { type: 'string', enum: [...WEBHOOK_EVENTS] }, minItems: 1, uniqueItems: true, description: 'Default: every event type' },
  },
  required: ['url'],
  additionalProperties: false,
};
