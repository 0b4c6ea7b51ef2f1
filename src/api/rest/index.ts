// The REST door's public surface.
export { createRestApp, restRoutes, apiKeyOf, type RestOptions } from './app.js';
export { startRestServer, type RestServer, type RestServerOptions } from './server.js';
export { buildOpenApi } from './openapi.js';
export type { RouteDef } from './route.js';
