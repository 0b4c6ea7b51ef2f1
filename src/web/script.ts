// The dashboard's script (/dashboard.js): plain browser JavaScript, no
// framework and no build step. It reads the public REST API with the key the
// user pasted (kept in localStorage) and routes on the URL hash:
//   #/            jobs list, filter by status, live over the tenant's SSE stream (GET /v1/events)
//   #/new         submit form, its fields and defaults read from /openapi.json's RunSpec
//   #/jobs/<id>   job page: spec, progress, verdict, plots, rounds, artifacts, cancel
// EventSource cannot send an Authorization header, so streams are read with
// fetch and parsed here. The progress helpers come from format.ts as source,
// so node tests check the very functions the page runs.
import { pct } from '../engine/report/format.js';
import { durationShown, progressShown, roundsShown } from './format.js';

/** Run-spec fields the form shows up front; the others sit under "More parameters". Types, defaults and help come from the schema. */
export const MAIN_FIELDS = ['method', 'rounds', 'iterations', 'batchSize', 'targetDensity', 'controls', 'seed', 'filterFraction', 'targetFlopReduction', 'sensitivity'];

const APP = String.raw`
const KEY = 'ticketsmith-key';
const ACTIVE = ['queued', 'running'];
let key = localStorage.getItem(KEY) || '';
let view = new AbortController();
let openapiDoc = null;

function h(tag, attrs, children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of [].concat(children == null ? [] : children)) el.append(c instanceof Node ? c : String(c));
  return el;
}
const $ = (sel) => document.querySelector(sel);
const fmtInt = (x) => (typeof x === 'number' ? x.toLocaleString('en-US') : '');
const fmtNum = (x, d) => (typeof x === 'number' ? x.toFixed(d) : '');
const fmtBytes = (n) => (typeof n !== 'number' ? '' : n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB');

/** One REST call with the key; resolves to { ok, status, body } (body parsed when JSON). */
async function api(path, init) {
  init = init || {};
  const headers = Object.assign({ authorization: 'Bearer ' + key }, init.headers || {});
  const res = await fetch(path, Object.assign({}, init, { headers: headers, signal: init.signal || view.signal }));
  const type = res.headers.get('content-type') || '';
  const body = type.includes('json') ? await res.json() : await res.text();
  if (res.status === 401) { signOut('That key was refused: ' + ((body && body.error && body.error.message) || res.statusText)); }
  return { ok: res.ok, status: res.status, body: body };
}
function errorText(body, fallback) {
  return body && body.error ? body.error.code + ': ' + body.error.message : String(fallback || 'request failed');
}
async function openapi() {
  if (!openapiDoc) openapiDoc = await (await fetch('/openapi.json')).json();
  return openapiDoc;
}

/** Reads Server-Sent Events from a fetch body until it ends or the view changes; onEvent(kind, data), onOpen() once it answered. */
async function stream(path, onEvent, signal, onOpen) {
  try {
    const res = await fetch(path, { headers: { authorization: 'Bearer ' + key, accept: 'text/event-stream' }, signal: signal });
    if (!res.ok || !res.body) return;
    if (onOpen) onOpen();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      buf += r.value.replace(/\r\n?/g, '\n');
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        let kind = 'message';
        const data = [];
        for (const line of frame.split('\n')) {
          if (line.startsWith('event:')) kind = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        if (data.length) onEvent(kind, data.join('\n'));
      }
    }
  } catch (e) {
    if (!signal.aborted) console.warn('stream ended', e);
  }
}

/** Runs fn at most once per ms, and once more after the last call. */
function throttle(fn, ms) {
  let timer = null;
  let again = false;
  return function () {
    if (timer) { again = true; return; }
    fn();
    timer = setTimeout(function tick() {
      timer = null;
      if (again) { again = false; fn(); timer = setTimeout(tick, ms); }
    }, ms);
  };
}

// ---- sign in / out

function signOut(message) {
  key = '';
  localStorage.removeItem(KEY);
  showLogin(message);
}
function showLogin(message) {
  view.abort();
  $('#nav').hidden = true;
  const input = h('input', { id: 'key', type: 'password', autocomplete: 'off', placeholder: 'tsk_...', 'aria-label': 'API key' });
  const form = h('form', { id: 'login', class: 'card', onsubmit: function (e) {
    e.preventDefault();
    const v = input.value.trim();
    if (!v) return;
    key = v;
    localStorage.setItem(KEY, key);
    route();
  } }, [h('h2', { text: 'Sign in' }), h('p', { class: 'muted', text: 'Paste an API key of your tenant. It stays in this browser (localStorage) and goes only to this server.' }),
    input, h('button', { class: 'primary', type: 'submit', text: 'Sign in' }), h('p', { id: 'login-error', class: 'error', text: message || '' })]);
  $('#view').replaceChildren(form);
  input.focus();
}

// ---- jobs list

function progressCell(job) {
  const p = progressShown(job, Date.now());
  if (!ACTIVE.includes(job.status) && job.status !== 'succeeded') return h('span', { class: 'muted', text: job.progress ? Math.round(100 * p.fraction) + '%' : '' });
  const eta = job.status === 'running' && p.etaSeconds != null ? ' · ETA ' + durationShown(p.etaSeconds) : '';
  return h('span', { class: 'progress' }, [h('progress', { max: 100, value: Math.round(100 * p.fraction) }), ' ' + Math.round(100 * p.fraction) + '%' + eta]);
}

function jobRow(job) {
  const summary = (job.result && job.result.summary) || {};
  const td = (col, content, cls) => h('td', { 'data-col': col, class: cls }, content);
  return h('tr', { 'data-job': job.id, 'data-status': job.status }, [
    td('id', h('a', { href: '#/jobs/' + job.id, text: job.id.slice(0, 8) })),
    td('status', h('span', { class: 'status ' + job.status, text: job.status + (job.cancelRequested && ACTIVE.includes(job.status) ? ' (cancelling)' : '') })),
    td('model', job.spec.model),
    td('dataset', job.spec.dataset, 'hide-narrow'),
    td('method', job.spec.method || 'imp', 'hide-narrow'),
    td('rounds', roundsShown(job.progress), 'num'),
    td('progress', progressCell(job)),
    td('density', pct(summary.density), 'num'),
    td('accuracy', pct(summary.finalTestAccuracy), 'num'),
    td('created', new Date(job.createdAt).toLocaleString(), 'hide-narrow'),
  ]);
}

async function renderJobs() {
  const doc = await openapi();
  const listParams = (doc.paths['/v1/jobs'].get.parameters || []);
  const statusParam = listParams.find((p) => p.name === 'status');
  const states = (statusParam && statusParam.schema && statusParam.schema.enum) || [];
  const filter = h('select', { id: 'status-filter', 'aria-label': 'Status' }, [h('option', { value: '', text: 'all statuses' })].concat(states.map((s) => h('option', { value: s, text: s }))));
  filter.value = sessionStorage.getItem('ticketsmith-status') || '';
  const msg = h('p', { id: 'jobs-msg', class: 'muted' });
  const tbody = h('tbody');
  const heads = [['job'], ['status'], ['model'], ['dataset', 'hide-narrow'], ['method', 'hide-narrow'], ['rounds', 'num'], ['progress'], ['density', 'num'], ['test acc', 'num'], ['created', 'hide-narrow']];
  const table = h('table', { id: 'jobs' }, [h('thead', {}, h('tr', {}, heads.map((c) => h('th', { class: c[1], text: c[0] })))), tbody]);
  $('#view').replaceChildren(h('h2', { text: 'Jobs' }), h('div', { class: 'toolbar' }, [h('label', {}, ['Status ', filter]), h('a', { href: '#/new', text: 'New job' })]), h('section', {}, [h('div', { class: 'scroll' }, table), msg]));

  const signal = view.signal;
  function put(job) {
    const old = tbody.querySelector('tr[data-job="' + job.id + '"]');
    const shown = !filter.value || job.status === filter.value;
    if (old) { if (shown) old.replaceWith(jobRow(job)); else old.remove(); }
    else if (shown) tbody.prepend(jobRow(job));
    if (shown) msg.textContent = '';
  }
  // Ids the stream updated while a list read was under way: the stream's copy is the newer one.
  let touched = null;
  async function load() {
    const mine = touched = new Set();
    const q = '/v1/jobs?limit=100' + (filter.value ? '&status=' + encodeURIComponent(filter.value) : '');
    const r = await api(q);
    if (touched === mine) touched = null;
    if (!r.ok) { msg.className = 'error'; msg.textContent = errorText(r.body, r.status); return; }
    msg.className = 'muted';
    msg.textContent = r.body.items.length ? '' : 'No jobs' + (filter.value ? ' ' + filter.value : ' yet') + '.';
    const listed = new Set(r.body.items.map((j) => j.id));
    for (const tr of Array.from(tbody.rows)) if (!listed.has(tr.dataset.job) && !mine.has(tr.dataset.job)) tr.remove();
    for (const job of r.body.items.slice().reverse()) if (!mine.has(job.id)) put(job);
  }
  filter.addEventListener('change', () => { sessionStorage.setItem('ticketsmith-status', filter.value); load().catch(showError); });
  // Every change of the tenant's jobs from GET /v1/events; the list is read once the stream is open
  // (the server listens from then on), and read again after a dropped stream. A stream that cannot
  // open leaves a list read every 20 s.
  (async () => {
    while (!signal.aborted) {
      let opened = false;
      await stream('/v1/events', (kind, data) => {
        if (kind !== 'job') return;
        const job = JSON.parse(data);
        if (touched) touched.add(job.id);
        put(job);
      }, signal, () => { opened = true; load().catch(showError); });
      if (!opened && !signal.aborted) await load();
      if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, opened ? 2000 : 20000));
    }
  })().catch(showError);
}

// ---- job page

const PLOTS = { imp: [['accuracy', 'Test accuracy vs % weights remaining'], ['early-stop', 'Early-stop iteration vs % weights remaining'], ['density', 'Per-layer density (last round)']],
  filter: [['sensitivity', 'Sensitivity: accuracy per layer pruned alone'], ['density', 'Per-layer density (last round)']] };

function kvTable(rows, id) {
  return h('table', { class: 'kv', id: id }, h('tbody', {}, rows.map((r) => h('tr', {}, [h('td', { text: r[0] }), h('td', { text: r[1] })]))));
}
function specValue(v) {
  return v != null && typeof v === 'object' ? JSON.stringify(v) : String(v);
}
function control(controls, kind) {
  const c = controls && controls[kind];
  return c ? pct(c.finalTestAccuracy) : '';
}

async function download(path, name, status) {
  status.className = 'muted';
  status.textContent = 'Downloading ' + name + '...';
  const res = await fetch(path, { headers: { authorization: 'Bearer ' + key }, signal: view.signal });
  if (!res.ok) {
    const body = (res.headers.get('content-type') || '').includes('json') ? await res.json() : null;
    status.className = 'error';
    status.textContent = errorText(body, res.status + ' ' + res.statusText);
    return;
  }
  const url = URL.createObjectURL(await res.blob());
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  status.textContent = '';
}

async function renderJob(id) {
  const signal = view.signal;
  const title = h('h2', { text: 'Job ' + id });
  const status = h('span', { id: 'job-status', class: 'status' });
  const progress = h('span', { id: 'job-progress' });
  const cancel = h('button', { id: 'cancel', class: 'danger', type: 'button', text: 'Cancel job', hidden: true });
  const note = h('p', { id: 'job-msg' });
  const verdict = h('div', { id: 'verdict' });
  const plots = h('div', { class: 'plots', id: 'plots' });
  const roundsBody = h('tbody');
  const cols = [['round', 'num'], ['weights left', 'num'], ['test acc', 'num'], ['early stop', 'num'], ['acc at stop', 'num'], ['random reinit', 'num'], ['random structure', 'num'], ['params', 'num'], ['FLOPs', 'num'], ['size', 'num'], ['time', 'num']];
  const rounds = h('table', { id: 'rounds' }, [h('thead', {}, h('tr', {}, cols.map((c) => h('th', { class: c[1], text: c[0] })))), roundsBody]);
  const artifacts = h('tbody');
  const downloadMsg = h('p', { id: 'download-msg' });
  const ticket = h('button', { id: 'ticket', type: 'button', text: 'Download ticket.zip', hidden: true, onclick: () => download('/v1/jobs/' + id + '/ticket.zip', 'ticket-' + id.slice(0, 8) + '.zip', downloadMsg).catch(showError) });
  const spec = h('div', { id: 'spec' });
  $('#view').replaceChildren(title,
    h('section', {}, [h('div', { class: 'toolbar' }, [status, progress, cancel]), note, verdict]),
    h('section', {}, [h('h3', { text: 'Lottery ticket plots' }), plots]),
    h('section', {}, [h('h3', { text: 'Rounds' }), h('div', { class: 'scroll' }, rounds)]),
    h('section', {}, [h('h3', { text: 'Downloads' }), h('div', { class: 'toolbar' }, ticket), downloadMsg,
      h('div', { class: 'scroll' }, h('table', { id: 'artifacts' }, [h('thead', {}, h('tr', {}, ['artifact', 'round', 'kind', 'size', ''].map((t) => h('th', { text: t })))), artifacts]))]),
    h('section', {}, [h('h3', { text: 'Spec' }), spec]));

  let job = null;
  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    const r = await api('/v1/jobs/' + id + '/cancel', { method: 'POST' });
    if (!r.ok) { note.className = 'error'; note.textContent = errorText(r.body, r.status); }
    await showJob();
  });

  async function showJob() {
    const r = await api('/v1/jobs/' + id);
    if (!r.ok) { note.className = 'error'; note.textContent = errorText(r.body, r.status); return null; }
    job = r.body;
    status.className = 'status ' + job.status;
    status.textContent = job.status + (job.cancelRequested && ACTIVE.includes(job.status) ? ' (cancelling)' : '');
    progress.replaceChildren('rounds ' + roundsShown(job.progress) + ' ', progressCell(job));
    cancel.hidden = !ACTIVE.includes(job.status);
    cancel.disabled = !!job.cancelRequested;
    ticket.hidden = job.status !== 'succeeded';
    note.className = job.error ? 'error' : 'muted';
    note.textContent = job.error ? job.error.code + ': ' + job.error.message : job.runName ? 'run ' + job.runName + (job.backend ? ' on ' + job.backend : '') : '';
    const result = job.result || {};
    const v = result.verdict;
    const filt = result.summary && result.summary.filter;
    const parts = [];
    if (v && v.summary) parts.push(h('p', { id: 'verdict-text' }, [h('strong', { text: 'Verdict: ' }), v.summary]));
    if (filt) {
      const ba = (label, b, a, f) => [label, f(b) + ' → ' + f(a)];
      parts.push(kvTable([ba('parameters', filt.paramsBefore, filt.paramsAfter, fmtInt), ba('FLOPs', filt.flopsBefore, filt.flopsAfter, fmtInt),
        ba('latency, batch of 64 (ms)', filt.latencyBatch64MsBefore, filt.latencyBatch64MsAfter, (x) => fmtNum(x, 1)), ba('test accuracy', filt.accuracyBefore, filt.accuracyAfter, pct)], 'filter-summary'));
    }
    verdict.replaceChildren(...parts);
    spec.replaceChildren(h('dl', { id: 'spec-table', class: 'spec' }, Object.keys(job.spec).sort().map((k) => h('div', {}, [h('dt', { text: k }), h('dd', { text: specValue(job.spec[k]) })]))));
    return job;
  }

  async function showRounds() {
    const r = await api('/v1/jobs/' + id + '/rounds');
    if (!r.ok) return;
    roundsBody.replaceChildren(...r.body.items.map((x) => h('tr', { 'data-round': x.index }, [
      x.index, pct(x.density), pct(x.testAccuracy), x.earlyStopIteration, pct(x.earlyStopTestAccuracy), control(x.controls, 'reinit'), control(x.controls, 'shuffle'),
      fmtInt(x.paramsRemaining), fmtInt(x.flops), fmtBytes(x.compressedBytes), durationShown(x.durationSeconds),
    ].map((c) => h('td', { class: 'num', text: c == null ? '' : c })))));
  }

  async function showPlots() {
    const method = (job && job.spec.method) || 'imp';
    const figures = [];
    for (const [name, caption] of PLOTS[method] || []) {
      const res = await fetch('/v1/jobs/' + id + '/plots/' + name, { headers: { authorization: 'Bearer ' + key }, signal: signal });
      if (!res.ok) { await res.body?.cancel(); continue; }
      const svg = new DOMParser().parseFromString(await res.text(), 'image/svg+xml').documentElement;
      if (svg.nodeName !== 'svg') continue;
      figures.push(h('figure', { 'data-plot': name }, [document.importNode(svg, true), h('figcaption', { text: caption })]));
    }
    plots.replaceChildren(...(figures.length ? figures : [h('p', { class: 'muted', text: 'No plots yet: they appear once a round is committed.' })]));
  }

  async function showArtifacts() {
    const r = await api('/v1/jobs/' + id + '/artifacts');
    if (!r.ok) return;
    artifacts.replaceChildren(...r.body.items.map((a) => {
      const file = id.slice(0, 8) + '-' + a.name.replace(/\//g, '_');
      return h('tr', { 'data-artifact': a.id }, [h('td', { text: a.name }), h('td', { class: 'num', text: a.roundIndex == null ? '' : a.roundIndex }), h('td', { text: a.kind }),
        h('td', { class: 'num', text: fmtBytes(a.size) }),
        h('td', {}, h('button', { type: 'button', 'data-download': a.id, text: 'Download', onclick: () => download('/v1/artifacts/' + a.id, file, downloadMsg).catch(showError) }))]);
    }));
  }

  const all = () => Promise.all([showRounds(), showPlots(), showArtifacts()]);
  if (!(await showJob())) return;
  await all();
  if (ACTIVE.includes(job.status)) {
    const head = throttle(() => { showJob().catch(() => {}); }, 400);
    const body = throttle(() => { all().catch(() => {}); }, 1000);
    await stream('/v1/jobs/' + id + '/events', (kind) => {
      head();
      if (kind === 'round' || kind === 'round-end' || kind === 'result' || kind === 'end' || kind === 'finished') body();
    }, signal);
    if (!signal.aborted) { await showJob(); await all(); }
  }
}

// ---- submit form

function fieldInput(name, schema) {
  const id = 'f-' + name;
  if (schema.enum) return h('select', { id: id, name: name }, schema.enum.map((v) => h('option', { value: v, text: v, selected: v === schema.default })));
  if (schema.type === 'boolean') return h('input', { id: id, name: name, type: 'checkbox', checked: schema.default === true });
  if (schema.type === 'integer' || schema.type === 'number') {
    return h('input', { id: id, name: name, type: 'number', step: schema.type === 'integer' ? 1 : 'any', placeholder: schema.default == null ? '' : schema.default });
  }
  const example = Array.isArray(schema.default) ? schema.default.join(',') : schema.default;
  return h('input', { id: id, name: name, type: 'text', placeholder: example == null ? '' : example });
}
function fieldBox(name, schema) {
  const hint = (schema.default !== undefined ? 'default ' + specValue(schema.default) + '. ' : '') + (schema.description || '');
  return h('div', { class: 'field', 'data-field': name }, [h('label', { for: 'f-' + name, text: name }), fieldInput(name, schema), h('div', { class: 'hint', text: hint }), h('div', { class: 'err', 'data-error-for': name })]);
}
/** The value to send for a field, or undefined to leave the server's default. */
function fieldValue(el, schema) {
  if (schema.type === 'boolean') return el.checked === (schema.default === true) ? undefined : el.checked;
  const raw = el.value.trim();
  if (raw === '' || (schema.enum && raw === schema.default)) return undefined;
  if (schema.type === 'integer' || schema.type === 'number') return Number(raw);
  if (schema.type === 'array') return raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (schema.type === 'object') { try { return JSON.parse(raw); } catch (e) { return raw; } }
  return raw;
}

async function renderNew() {
  const doc = await openapi();
  const props = doc.components.schemas.RunSpec.properties;
  const main = MAIN_FIELDS.filter((n) => props[n]);
  const rest = Object.keys(props).filter((n) => n !== 'model' && n !== 'dataset' && !main.includes(n));
  const formMsg = h('p', { id: 'form-msg' });

  const zoo = h('input', { id: 'f-model', type: 'text', value: props.model.default || '', 'aria-label': 'zoo model' });
  const uploaded = h('select', { id: 'f-uploaded', 'aria-label': 'uploaded model' });
  const files = h('input', { id: 'f-files', type: 'file', multiple: true, 'aria-label': 'model files' });
  const uploadMsg = h('span', { id: 'upload-msg', class: 'muted' });
  const source = h('select', { id: 'model-source', 'aria-label': 'model source' }, [h('option', { value: 'zoo', text: 'zoo model' }), h('option', { value: 'uploaded', text: 'uploaded model' })]);
  const datasets = h('datalist', { id: 'dataset-options' });
  const dataset = h('input', { id: 'f-dataset', type: 'text', value: props.dataset.default || '', list: 'dataset-options', 'aria-label': 'dataset' });
  const zooBox = h('div', { class: 'zoo' }, [zoo]);
  const upBox = h('div', { class: 'up', hidden: true }, [uploaded, h('div', {}, [files, ' ', h('button', { type: 'button', id: 'upload', text: 'Upload', onclick: () => upload().catch(showError) }), ' ', uploadMsg])]);
  source.addEventListener('change', () => { zooBox.hidden = source.value !== 'zoo'; upBox.hidden = source.value === 'zoo'; });

  async function loadChoices() {
    const [m, d] = await Promise.all([api('/v1/models'), api('/v1/datasets')]);
    if (m.ok) uploaded.replaceChildren(...m.body.items.map((x) => h('option', { value: x.id, text: (x.name || x.id.slice(0, 8)) + ' (' + x.id.slice(0, 8) + ')' })));
    if (d.ok) datasets.replaceChildren(...d.body.items.map((x) => h('option', { value: 'dataset:' + x.id, text: x.reference || x.name || x.id })));
  }
  async function upload() {
    if (!files.files.length) { uploadMsg.textContent = 'Choose model.json and its weight files, an .onnx file, or one archive.'; return; }
    const data = new FormData();
    const one = files.files.length === 1 && /\.(zip|tar|tar\.gz|tgz)$/i.test(files.files[0].name);
    for (const f of files.files) data.append(one ? 'archive' : 'files', f, f.name);
    uploadMsg.textContent = 'Uploading...';
    const r = await api('/v1/models', { method: 'POST', body: data });
    if (!r.ok) { uploadMsg.className = 'error'; uploadMsg.textContent = errorText(r.body, r.status); return; }
    uploadMsg.className = 'muted';
    uploadMsg.textContent = 'Uploaded ' + r.body.id.slice(0, 8) + '.';
    await loadChoices();
    uploaded.value = r.body.id;
  }

  const modelBox = h('div', { class: 'field', 'data-field': 'model' }, [h('label', { text: 'model' }), source, zooBox, upBox, h('div', { class: 'hint', text: props.model.description || '' }), h('div', { class: 'err', 'data-error-for': 'model' })]);
  const datasetBox = h('div', { class: 'field', 'data-field': 'dataset' }, [h('label', { for: 'f-dataset', text: 'dataset' }), dataset, datasets, h('div', { class: 'hint', text: (props.dataset.description || '') + ' Registered datasets are listed as dataset:<id>.' }), h('div', { class: 'err', 'data-error-for': 'dataset' })]);
  const form = h('form', { id: 'submit-form', class: 'card', novalidate: true }, [
    h('div', { class: 'fields' }, [modelBox, datasetBox].concat(main.map((n) => fieldBox(n, props[n])))),
    h('details', {}, [h('summary', { text: 'More parameters (' + rest.length + ')' }), h('div', { class: 'fields' }, rest.map((n) => fieldBox(n, props[n])))]),
    h('div', { class: 'toolbar' }, [h('button', { class: 'primary', type: 'submit', text: 'Submit job' }), formMsg]),
  ]);
  $('#view').replaceChildren(h('h2', { text: 'New job' }), form);
  loadChoices().catch(() => {});

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const el of form.querySelectorAll('.err')) el.textContent = '';
    for (const el of form.querySelectorAll('.field.invalid')) el.classList.remove('invalid');
    formMsg.className = 'muted';
    formMsg.textContent = 'Submitting...';
    const body = { model: source.value === 'zoo' ? zoo.value.trim() : uploaded.value, dataset: dataset.value.trim() };
    for (const n of main.concat(rest)) {
      const v = fieldValue(form.querySelector('#f-' + n), props[n]);
      if (v !== undefined) body[n] = v;
    }
    const r = await api('/v1/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (r.ok) { location.hash = '#/jobs/' + r.body.id; return; }
    const err = (r.body && r.body.error) || {};
    const problems = Array.isArray(err.errors) && err.errors.length ? err.errors : [{ field: err.field, message: err.message }];
    const unplaced = [];
    for (const p of problems) {
      const name = String(p.field || '').replace(/^spec\./, '').split(/[.\[]/)[0];
      const slot = name && form.querySelector('[data-error-for="' + name + '"]');
      if (slot) {
        slot.textContent = (slot.textContent ? slot.textContent + ' ' : '') + p.message;
        slot.parentElement.classList.add('invalid');
      } else unplaced.push(p.message);
    }
    formMsg.className = 'error';
    formMsg.textContent = (err.code || r.status) + (unplaced.length ? ': ' + unplaced.join('; ') : ': see the fields marked above');
    const first = form.querySelector('.field.invalid');
    if (first) first.scrollIntoView({ block: 'center' });
  });
}

// ---- routing

function showError(e) {
  if (e && e.name === 'AbortError') return;
  const p = h('p', { class: 'error', text: String(e && e.message ? e.message : e) });
  $('#view').prepend(p);
}
async function route() {
  view.abort();
  view = new AbortController();
  if (!key) { showLogin(); return; }
  $('#nav').hidden = false;
  const m = /^#\/jobs\/([0-9a-fA-F-]{36})$/.exec(location.hash);
  document.title = m ? 'Job ' + m[1].slice(0, 8) + ' · Ticketsmith' : 'Ticketsmith';
  try {
    if (m) await renderJob(m[1]);
    else if (location.hash === '#/new') await renderNew();
    else await renderJobs();
  } catch (e) { showError(e); }
}
$('#signout').addEventListener('click', (e) => { e.preventDefault(); signOut(''); });
window.addEventListener('hashchange', route);
route();
`;

/** Marks where the app starts in the served script; what comes before it is the helpers alone (tests evaluate that part in node). */
export const APP_MARK = '// ---- app';

/** The embedded helpers: plain functions the page calls, from their TypeScript sources. */
export function helpersScript(): string {
  return [
    "'use strict';",
    // tsx and esbuild wrap named inner functions as __name(fn, "name"); the embedded sources may carry it.
    'var __name = function (f) { return f; };',
    'const MAIN_FIELDS = ' + JSON.stringify(MAIN_FIELDS) + ';',
    'const pct = (x) => (' + String(pct) + ')(x, { missing: "" });',
    String(roundsShown),
    String(progressShown),
    String(durationShown),
  ].join('\n');
}

/** The whole script: the helpers, then the app. */
export function dashboardScript(): string {
  return helpersScript() + '\n' + APP_MARK + APP;
}
