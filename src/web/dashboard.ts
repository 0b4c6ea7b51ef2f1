// The dashboard at `/`: a small single page (HTML, /dashboard.css,
// /dashboard.js) that reads the public REST API from the browser with the
// tenant's API key, like any other client. No server-side state, no build step
// and nothing from a CDN: the REST app serves these three bodies as they are.
import { dashboardScript } from './script.js';
import { CSS } from './style.js';

export { roundsShown, progressShown, durationShown, type ProgressShown } from './format.js';

export interface StaticRoute {
  path: string;
  type: string;
  body: string;
}

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ticketsmith</title>
<link rel="stylesheet" href="/dashboard.css">
</head>
<body>
<header>
<h1>Ticketsmith</h1>
<nav id="nav" hidden><a href="#/">Jobs</a><a href="#/new">New job</a><a href="/openapi.json">API</a></nav>
<a href="#" id="signout">Sign out</a>
</header>
<main id="view"><noscript>The dashboard needs JavaScript; the API is described at /openapi.json.</noscript></main>
<script src="/dashboard.js"></script>
</body>
</html>
`;

export function dashboardRoutes(): StaticRoute[] {
  return [
    { path: '/', type: 'text/html; charset=utf-8', body: HTML },
    { path: '/dashboard.css', type: 'text/css; charset=utf-8', body: CSS },
    { path: '/dashboard.js', type: 'text/javascript; charset=utf-8', body: dashboardScript() },
  ];
}
