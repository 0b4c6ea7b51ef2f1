// A one-page dashboard at `/`: paste an API key (kept in the browser's
// localStorage) and see the tenant's jobs, read through the public REST API
// like any other client. No server-side state, no build step: the script's
// percentage helper is report/format.ts's pct, embedded as source.
import { pct } from '../engine/report/format.js';

export interface StaticRoute {
  path: string;
  type: string;
  body: string;
}

/** What the job's progress says, as the REST API returns it (store/progress.ts). */
export interface ProgressShown {
  roundsCompleted: number;
  /** Rounds in the run, round 0 included; null until the engine says. */
  rounds: number | null;
}

/**
 * The "round" column: rounds committed / rounds in the run (both count round
 * 0). The page runs this very function (its source goes into dashboard.js),
 * so it must stay plain JavaScript once its types are stripped.
 */
export function roundsShown(p: ProgressShown | null): string {
  if (!p) return '';
  return p.roundsCompleted + '/' + (p.rounds == null ? '?' : p.rounds);
}

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ticketsmith</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #222; }
  table { border-collapse: collapse; margin-top: 1rem; width: 100%; }
  th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .succeeded { color: #176f2c; } .failed { color: #b00020; } .running { color: #0b57d0; } .cancelled { color: #777; }
  input { width: 28rem; }
  #msg { color: #b00020; }
</style>
</head>
<body>
<h1>Ticketsmith</h1>
<p>Lottery-ticket pruning jobs of your tenant. API: <a href="/openapi.json">/openapi.json</a></p>
<form id="auth"><label>API key <input id="key" type="password" autocomplete="off" placeholder="tsk_..."></label> <button>Show jobs</button></form>
<p id="msg"></p>
<table id="jobs" hidden>
<thead><tr><th>job</th><th>status</th><th>model</th><th>dataset</th><th>round</th><th>progress</th><th>density</th><th>test acc</th><th>created</th></tr></thead>
<tbody></tbody>
</table>
<script src="/dashboard.js"></script>
</body>
</html>
`;

const JS = `'use strict';
const keyInput = document.getElementById('key');
const msg = document.getElementById('msg');
const table = document.getElementById('jobs');
keyInput.value = localStorage.getItem('ticketsmith-key') || '';
const pct = (x) => (${String(pct)})(x, { missing: '' });
${roundsShown.toString()}
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text == null ? '' : String(text);
  if (cls) td.className = cls;
}
async function load() {
  const key = keyInput.value.trim();
  if (!key) return;
  localStorage.setItem('ticketsmith-key', key);
  const res = await fetch('/v1/jobs?limit=100', { headers: { authorization: 'Bearer ' + key } });
  const body = await res.json();
  if (!res.ok) { msg.textContent = body.error ? body.error.code + ': ' + body.error.message : res.statusText; table.hidden = true; return; }
  msg.textContent = body.items.length ? '' : 'No jobs yet.';
  const tbody = table.tBodies[0];
  tbody.replaceChildren();
  for (const j of body.items) {
    const r = tbody.insertRow();
    const p = j.progress;
    const result = j.result || {};
    const summary = result.summary || {};
    cell(r, j.id.slice(0, 8));
    cell(r, j.status, j.status);
    cell(r, j.spec.model);
    cell(r, j.spec.dataset);
    cell(r, roundsShown(p), 'num');
    cell(r, p && p.totalSteps ? Math.round((100 * p.step) / p.totalSteps) + '%' : '', 'num');
    cell(r, pct(summary.density), 'num');
    cell(r, pct(summary.finalTestAccuracy), 'num');
    cell(r, new Date(j.createdAt).toLocaleString());
  }
  table.hidden = false;
}
document.getElementById('auth').addEventListener('submit', (e) => { e.preventDefault(); load().catch((err) => { msg.textContent = String(err); }); });
load().catch((err) => { msg.textContent = String(err); });
setInterval(() => { if (!document.hidden) load().catch(() => {}); }, 5000);
`;

export function dashboardRoutes(): StaticRoute[] {
  return [
    { path: '/', type: 'text/html; charset=utf-8', body: HTML },
    { path: '/dashboard.js', type: 'text/javascript; charset=utf-8', body: JS },
  ];
}
