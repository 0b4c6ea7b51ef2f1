// The one outbound guard: everything the service fetches for a tenant (dataset
// downloads today, webhooks later) goes through it, so a tenant's URL cannot
// make a worker talk to the machine itself, the private network or a cloud
// metadata endpoint.
//
// How: the host is resolved first (every address), and the request is refused
// if ANY address lies in a non-public range (classifyAddress) unless the
// operator's allow list (TICKETSMITH_OUTBOUND_ALLOW) names the host or its
// range. The connection is then pinned to the checked address (a custom
// `lookup`), so a DNS answer that changes between check and connect (DNS
// rebinding) cannot move the target; redirects are followed by hand and each
// hop is checked again. Every refusal is one message that reveals nothing
// about the target: not whether it resolved, nor what answered.
//
// Webhook deliveries POST through the same guard with `redirect: 'manual'`:
// a redirect answer is returned as it is (and counts as a failed attempt), so
// a receiver cannot bounce a signed body to another host.
//
// What it does not do: it does not bound body sizes (the reader does) and
// sends no credentials of its own.
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupAddress, LookupOptions } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { pipeline, Readable } from 'node:stream';
import zlib from 'node:zlib';

/** Why an address is (not) public; everything but `public` is refused. */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'cgnat'
  | 'multicast'
  | 'unspecified'
  | 'broadcast'
  | 'reserved'
  | 'benchmark'
  | 'documentation'
  | 'unique-local'
  | 'site-local';

/** The one message of every refusal (callers add which field was refused). */
export const OUTBOUND_REFUSED = 'it does not resolve to a public address';

export class OutboundRefusedError extends Error {
  override name = 'OutboundRefusedError';
  constructor() {
    super(`URL is not allowed: ${OUTBOUND_REFUSED}`);
  }
}

// ---------------------------------------------------------------- addresses

/**
 * An IPv4 address in any spelling the WHATWG URL parser and inet_aton accept
 * (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`, a trailing dot) as an
 * unsigned 32-bit number; null when `input` is not one.
 */
export function parseIPv4(input: string): number | null {
  const s = input.endsWith('.') ? input.slice(0, -1) : input;
  const parts = s.split('.');
  if (parts.length === 0 || parts.length > 4) return null;
  const nums: number[] = [];
  for (const p of parts) {
    let digits = p;
    let radix = 10;
    if (/^0x/i.test(p)) {
      radix = 16;
      digits = p.slice(2);
    } else if (p.length > 1 && p.startsWith('0')) {
      radix = 8;
      digits = p.slice(1);
    }
    const ok = radix === 16 ? /^[0-9a-f]*$/i : radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
    if (!ok.test(digits)) return null;
    nums.push(digits === '' ? 0 : parseInt(digits, radix));
  }
  const last = nums.pop()!;
  if (nums.some((n) => n > 255) || last >= 256 ** (5 - parts.length)) return null;
  return nums.reduce((acc, n, i) => acc + n * 256 ** (3 - i), last);
}

/** An IPv6 address (brackets and a zone id allowed) as a 128-bit number; null when not one. */
export function parseIPv6(input: string): bigint | null {
  let s = input.startsWith('[') && input.endsWith(']') ? input.slice(1, -1) : input;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (isIP(s) !== 6) return null;
  if (s.includes('.')) {
    // A dotted IPv4 tail (::ffff:127.0.0.1) becomes its two 16-bit words.
    const at = s.lastIndexOf(':');
    const v4 = parseIPv4(s.slice(at + 1));
    if (v4 === null) return null;
    s = `${s.slice(0, at + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const [left, right] = s.split('::') as [string, string | undefined];
  const l = left === '' ? [] : left.split(':');
  const r = right === undefined ? null : right === '' ? [] : right.split(':');
  const words = r === null ? l : [...l, ...Array<string>(8 - l.length - r.length).fill('0'), ...r];
  if (words.length !== 8) return null;
  return words.reduce((acc, w) => (acc << 16n) | BigInt(parseInt(w, 16)), 0n);
}

type V4Range = readonly [base: string, bits: number, cls: AddressClass];

// IANA IPv4 special-purpose registry; broadcast before the 240/4 it sits in.
const V4_RANGES: readonly V4Range[] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'cgnat'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmark'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['255.255.255.255', 32, 'broadcast'],
  ['240.0.0.0', 4, 'reserved'],
];

function inV4(n: number, base: string, bits: number): boolean {
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((n & mask) >>> 0) === ((parseIPv4(base)! & mask) >>> 0);
}

function classifyV4(n: number): AddressClass {
  for (const [base, bits, cls] of V4_RANGES) if (inV4(n, base, bits)) return cls;
  return 'public';
}

function inV6(n: bigint, base: string, bits: number): boolean {
  const shift = BigInt(128 - bits);
  return n >> shift === parseIPv6(base)! >> shift;
}

const low32 = (n: bigint) => Number(n & 0xffffffffn);

function classifyV6(n: bigint): AddressClass {
  if (n === 0n) return 'unspecified';
  if (n === 1n) return 'loopback';
  // Forms that carry an IPv4 address: the class is the embedded address's.
  if (inV6(n, '::ffff:0:0', 96) || inV6(n, '::ffff:0:0:0', 96) || inV6(n, '64:ff9b::', 96)) return classifyV4(low32(n));
  if (inV6(n, '::', 96)) {
    // IPv4-compatible (deprecated): never a way to reach a public host.
    const embedded = classifyV4(low32(n));
    return embedded === 'public' ? 'reserved' : embedded;
  }
  if (inV6(n, '2002::', 16)) return classifyV4(Number((n >> 80n) & 0xffffffffn)); // 6to4
  const ranges: ReadonlyArray<readonly [string, number, AddressClass]> = [
    ['64:ff9b:1::', 48, 'private'], // local-use NAT64
    ['100::', 64, 'reserved'], // discard-only
    ['2001:db8::', 32, 'documentation'],
    ['2001:2::', 48, 'benchmark'],
    ['2001::', 23, 'reserved'], // IETF protocol assignments (Teredo, ORCHID...)
    ['3fff::', 20, 'documentation'],
    ['5f00::', 16, 'reserved'], // SRv6 SIDs
    ['fc00::', 7, 'unique-local'],
    ['fe80::', 10, 'link-local'],
    ['fec0::', 10, 'site-local'],
    ['ff00::', 8, 'multicast'],
  ];
  for (const [base, bits, cls] of ranges) if (inV6(n, base, bits)) return cls;
  // Only 2000::/3 is global unicast; the rest of the space is unassigned.
  return inV6(n, '2000::', 3) ? 'public' : 'reserved';
}

/**
 * The class of an IP address literal in any spelling (IPv4 forms of
 * parseIPv4, IPv6 with or without brackets, zone ids, embedded IPv4);
 * null when `address` is not an IP literal (a host name).
 */
export function classifyAddress(address: string): AddressClass | null {
  const v6 = parseIPv6(address);
  if (v6 !== null) return classifyV6(v6);
  const v4 = parseIPv4(address);
  return v4 === null ? null : classifyV4(v4);
}

/** `localhost` and `*.localhost` (RFC 6761) never leave the machine, whatever DNS says. */
export function isLocalhostName(host: string): boolean {
  const name = host.toLowerCase().replace(/\.+$/, '');
  return name === 'localhost' || name.endsWith('.localhost');
}

// ---------------------------------------------------------------- allow list

interface Cidr {
  v6: boolean;
  base: bigint;
  bits: number;
}

/** The operator's exceptions: host names (exact, case-insensitive) and CIDR ranges. */
export interface AllowList {
  names: ReadonlySet<string>;
  ranges: readonly Cidr[];
}

const addressValue = (address: string): { v6: boolean; n: bigint } | null => {
  const v6 = parseIPv6(address);
  if (v6 !== null) {
    // A mapped IPv4 address is matched as the IPv4 address it is.
    return v6 >> 32n === 0xffffn ? { v6: false, n: v6 & 0xffffffffn } : { v6: true, n: v6 };
  }
  const v4 = parseIPv4(address);
  return v4 === null ? null : { v6: false, n: BigInt(v4) };
};

/** Parses TICKETSMITH_OUTBOUND_ALLOW entries; throws an Error naming a bad entry. */
export function parseAllowList(entries: readonly string[]): AllowList {
  const names = new Set<string>();
  const ranges: Cidr[] = [];
  for (const raw of entries) {
    const entry = raw.trim();
    if (entry === '') continue;
    const slash = entry.indexOf('/');
    const addr = slash >= 0 ? entry.slice(0, slash) : entry;
    const value = addressValue(addr);
    if (value === null) {
      if (slash >= 0 || !/^[a-z0-9.-]+$/i.test(entry)) throw new Error(`'${entry}' is neither a host name nor an address range (CIDR)`);
      names.add(entry.toLowerCase().replace(/\.+$/, ''));
      continue;
    }
    const width = value.v6 ? 128 : 32;
    const bits = slash >= 0 ? Number(entry.slice(slash + 1)) : width;
    if (!Number.isInteger(bits) || bits < 0 || bits > width || (slash >= 0 && !/^\d+$/.test(entry.slice(slash + 1)))) {
      throw new Error(`'${entry}': prefix length must be 0-${width}`);
    }
    const shift = BigInt(width - bits);
    ranges.push({ v6: value.v6, base: (value.n >> shift) << shift, bits });
  }
  return { names, ranges };
}

function allowedAddress(allow: AllowList, address: string): boolean {
  const value = addressValue(address);
  if (value === null) return false;
  return allow.ranges.some((r) => {
    if (r.v6 !== value.v6) return false;
    const shift = BigInt((r.v6 ? 128 : 32) - r.bits);
    return value.n >> shift === r.base >> shift;
  });
}

// ---------------------------------------------------------------- the guard

/** Resolves a host name to every address it has (dns.lookup all, by default). */
export type Resolver = (hostname: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export interface OutboundOptions {
  /** Host names and CIDR ranges that may be reached although not public. */
  allow?: readonly string[] | AllowList;
  /** Tests inject one; default: the system resolver. */
  resolve?: Resolver;
  /** Redirects followed per request (default 5). */
  maxRedirects?: number;
  /** A connection idle this long is given up (default 60 s). */
  idleTimeoutMs?: number;
  /** Certificates trusted for https instead of Node's bundle (an internal CA; tests). */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
}

/** A URL that passed the check, and the address its connection is pinned to. */
export interface CheckedTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

export interface GuardedInit {
  signal?: AbortSignal;
  headers?: ConstructorParameters<typeof Headers>[0];
  /** GET (default) or POST with `body`. */
  method?: 'GET' | 'POST';
  body?: string | Uint8Array<ArrayBuffer>;
  /** 'manual': a redirect answer is returned as it is, not followed (default 'follow'). */
  redirect?: 'follow' | 'manual';
}

/** What guardedFetch looks like: fetch(url, { signal, headers, method, body, redirect }). */
export type GuardedFetch = (url: string, init?: GuardedInit) => Promise<Response>;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Sent to the first origin only (as fetch does on a cross-origin redirect). */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

export class OutboundGuard {
  private readonly allow: AllowList;
  private readonly resolver: Resolver;
  private readonly maxRedirects: number;
  private readonly idleTimeoutMs: number;
  private readonly ca: OutboundOptions['ca'];

  constructor(opts: OutboundOptions = {}) {
    const allow = opts.allow ?? [];
    this.allow = 'names' in allow ? allow : parseAllowList(allow);
    this.resolver = opts.resolve ?? systemResolver;
    this.maxRedirects = opts.maxRedirects ?? 5;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.ca = opts.ca;
  }

  /**
   * Checks a URL: http(s) only, and every address of its host public or
   * allowed. Throws OutboundRefusedError (one message for every reason);
   * otherwise returns the address to connect to.
   */
  async check(input: string | URL, signal?: AbortSignal): Promise<CheckedTarget> {
    let url: URL;
    try {
      url = new URL(String(input));
    } catch {
      throw new OutboundRefusedError();
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundRefusedError();
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const literal = classifyAddress(host);
    if (literal !== null) {
      if (literal !== 'public' && !allowedAddress(this.allow, host)) throw new OutboundRefusedError();
      return { url, address: host, family: isIP(host) === 6 ? 6 : 4 };
    }
    const name = host.toLowerCase().replace(/\.+$/, '');
    const named = this.allow.names.has(name);
    if (!named && isLocalhostName(name)) throw new OutboundRefusedError();
    let addresses: ReadonlyArray<{ address: string; family: number }>;
    try {
      addresses = await abortable(this.resolver(host), signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new OutboundRefusedError(); // "does not resolve" must read like "resolves inside"
    }
    const first = addresses[0];
    if (first === undefined) throw new OutboundRefusedError();
    for (const a of addresses) {
      const cls = classifyAddress(a.address);
      if (cls === null) throw new OutboundRefusedError();
      if (!named && cls !== 'public' && !allowedAddress(this.allow, a.address)) throw new OutboundRefusedError();
    }
    return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
  }

  /** fetch(url, init) through the guard: redirects re-checked (or not followed), connections pinned. */
  readonly fetch: GuardedFetch = async (input, init = {}) => {
    const { signal } = init;
    const headers = new Headers(init.headers);
    const body = init.body === undefined ? undefined : typeof init.body === 'string' ? Buffer.from(init.body) : init.body;
    if (body !== undefined) headers.set('content-length', String(body.byteLength));
    let url = new URL(input);
    for (let hop = 0; ; hop++) {
      signal?.throwIfAborted();
      const target = await this.check(url, signal);
      const res = await this.request(target, headers, signal, init.method ?? 'GET', body);
      const location = res.headers.location;
      // A POST is never followed: its body must not travel on to another target.
      if (init.redirect === 'manual' || init.method === 'POST' || !REDIRECTS.has(res.statusCode ?? 0) || location === undefined) return toResponse(res, target.url);
      res.resume();
      if (hop >= this.maxRedirects) throw new TypeError(`too many redirects (at most ${this.maxRedirects})`);
      let next: URL;
      try {
        next = new URL(location, target.url);
      } catch {
        throw new OutboundRefusedError();
      }
      if (next.origin !== target.url.origin) for (const h of CREDENTIAL_HEADERS) headers.delete(h);
      url = next;
    }
  };

  private request(target: CheckedTarget, headers: Headers, signal: AbortSignal | undefined, method: 'GET' | 'POST', body?: Uint8Array): Promise<http.IncomingMessage> {
    const { url } = target;
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request({
        protocol: url.protocol,
        // The name stays the request's host: Host header and TLS SNI/certificate
        // check use it, while `lookup` pins the socket to the checked address.
        hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method,
        headers: Object.fromEntries(headers),
        lookup: pinnedLookup(target.address, target.family),
        // No pooled sockets: one connected to an earlier check's address must not be reused.
        agent: false,
        signal,
        timeout: this.idleTimeoutMs,
        ...(this.ca === undefined ? {} : { ca: this.ca as string | Buffer | Array<string | Buffer> }),
      });
      req.on('timeout', () => req.destroy(new Error(`no data for ${this.idleTimeoutMs} ms`)));
      // Stays attached after the response: a late socket error must not go unhandled.
      req.on('error', reject);
      req.on('response', (res) => {
        // The body's own errors reach its reader through the web stream; this keeps them handled meanwhile.
        res.on('error', () => {});
        resolve(res);
      });
      req.end(body);
    });
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A `lookup` that answers only the checked address: no second DNS query happens. */
function pinnedLookup(address: string, family: 4 | 6) {
  return (_hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
}

async function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort!);
  }
}

const NULL_BODY = new Set([101, 204, 205, 304]);

/** A WHATWG Response over the IncomingMessage, body streaming (decoded as fetch would). */
function toResponse(res: http.IncomingMessage, url: URL): Response {
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 599) {
    res.destroy();
    throw new TypeError(`unexpected HTTP status ${status}`);
  }
  const headers = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  let body: ReadableStream<Uint8Array> | null = null;
  if (NULL_BODY.has(status)) res.resume();
  else {
    const decoder = decoderFor(res.headers['content-encoding']);
    // pipeline forwards a socket error to the decoder, so the reader sees it.
    const stream: Readable = decoder ? pipeline(res, decoder, () => {}) : res;
    body = Readable.toWeb(stream) as unknown as ReadableStream<Uint8Array>;
  }
  let response: Response;
  try {
    response = new Response(body, { status, statusText: res.statusMessage ?? '', headers });
  } catch {
    response = new Response(body, { status, headers });
  }
  Object.defineProperty(response, 'url', { value: url.href });
  return response;
}

function decoderFor(encoding: string | undefined): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | null {
  switch (encoding?.trim().toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return null;
  }
}

/** The guard with no allow list: what the engine uses when its caller passes none. */
export const defaultGuard = new OutboundGuard();

/** fetch through the default guard (no allow list): swap it for `fetch` one-for-one in GET code. */
export const guardedFetch: GuardedFetch = (url, init) => defaultGuard.fetch(url, init);
