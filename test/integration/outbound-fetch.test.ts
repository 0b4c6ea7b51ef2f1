// The outbound guard over real sockets on loopback: a refused target is never
// connected to (a TCP receiver counts connections), the allow list reaches
// it, every redirect hop is checked again, the connection is pinned to the
// address that was checked, and timeouts and broken bodies reject cleanly.
// Only 127.0.0.0/8 is ever contacted.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { createServer as createHttpsServer } from 'node:https';
import { gzipSync } from 'node:zlib';
import { OutboundGuard, OutboundRefusedError, guardedFetch, type Resolver } from '../../src/runtime/outbound.js';

/** A TCP receiver on `host` that counts connections and answers each with an HTTP 403. */
async function receiver(host: string): Promise<{ port: number; connections(): number; close(): Promise<void> }> {
  let n = 0;
  const server: TcpServer = createTcpServer((socket) => {
    n++;
    socket.on('error', () => {});
    socket.resume(); // read (and drop) the request, so the client's close is seen
    socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => n,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** An HTTP server on `host` with a handler; records the Host header of each request. */
async function httpServer(host: string, handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const hosts: string[] = [];
  const server: HttpServer = createHttpServer((req, res) => {
    hosts.push(req.headers.host ?? '');
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hosts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const refused = (e: unknown) => {
  assert.ok(e instanceof OutboundRefusedError, `OutboundRefusedError expected, got ${String(e)}`);
  assert.equal(e.message, 'URL is not allowed: it does not resolve to a public address');
  return true;
};

describe('refusal before any connection', () => {
  let rx: Awaited<ReturnType<typeof receiver>>;
  before(async () => (rx = await receiver('127.0.0.1')));
  after(() => rx.close());

  test('guardedFetch refuses the receiver in every spelling and never connects', async () => {
    const p = rx.port;
    const urls = [
      `http://127.0.0.1:${p}/`,
      `http://2130706433:${p}/`,
      `http://0x7f000001:${p}/`,
      `http://0177.0.0.1:${p}/`,
      `http://127.1:${p}/`,
      `http://[::ffff:127.0.0.1]:${p}/`,
      `http://[::ffff:7f00:1]:${p}/`,
      `http://localhost:${p}/`,
      `http://db.localhost.:${p}/`,
      `https://127.0.0.1:${p}/`,
    ];
    for (const u of urls) await assert.rejects(guardedFetch(u), refused, u);
    assert.equal(rx.connections(), 0);
  });

  test('the refusal reads the same for a listening port, a closed port and a name that does not resolve', async () => {
    const closed = await receiver('127.0.0.1');
    await closed.close();
    const guard = new OutboundGuard({ resolve: async () => Promise.reject(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' })) });
    const messages = new Set<string>();
    for (const u of [`http://127.0.0.1:${rx.port}/`, `http://127.0.0.1:${closed.port}/`, 'http://no-such-host.test/']) {
      await guard.fetch(u).then(
        () => assert.fail(`${u} was fetched`),
        (e: unknown) => messages.add(String((e as Error).message)),
      );
    }
    assert.deepEqual([...messages], ['URL is not allowed: it does not resolve to a public address']);
    assert.equal(rx.connections(), 0);
  });

  test('with the allow list the receiver is reached', async () => {
    const guard = new OutboundGuard({ allow: ['127.0.0.1/32'] });
    const res = await guard.fetch(`http://127.0.0.1:${rx.port}/x`);
    assert.equal(res.status, 403);
    await res.body?.cancel();
    assert.equal(rx.connections(), 1);
  });
});

describe('redirects', () => {
  let rx: Awaited<ReturnType<typeof receiver>>;
  let front: Awaited<ReturnType<typeof httpServer>>;
  before(async () => {
    rx = await receiver('127.0.0.2');
    front = await httpServer('127.0.0.1', (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/to-receiver') res.writeHead(302, { location: `http://127.0.0.2:${rx.port}/secret` }).end();
      else if (url.pathname === '/to-metadata') res.writeHead(301, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      else if (url.pathname === '/to-file') res.writeHead(307, { location: 'file:///etc/passwd' }).end();
      else if (url.pathname === '/hop') {
        const left = Number(url.searchParams.get('n'));
        if (left > 0) res.writeHead(302, { location: `/hop?n=${left - 1}` }).end();
        else res.writeHead(200, { 'content-type': 'text/plain' }).end(`auth=${req.headers.authorization ?? ''}`);
      } else res.writeHead(404).end();
    });
  });
  after(async () => {
    await front.close();
    await rx.close();
  });

  test('a redirect from an allowed server to a refused one is refused, and the receiver saw nothing', async () => {
    const guard = new OutboundGuard({ allow: ['127.0.0.1/32'] });
    for (const path of ['/to-receiver', '/to-metadata', '/to-file']) {
      await assert.rejects(guard.fetch(`http://127.0.0.1:${front.port}${path}`), refused, path);
    }
    assert.equal(rx.connections(), 0);
  });

  test('redirects within the allowed range are followed, at most 5, with the final URL', async () => {
    const guard = new OutboundGuard({ allow: ['127.0.0.1/32'] });
    const res = await guard.fetch(`http://127.0.0.1:${front.port}/hop?n=5`, { headers: { authorization: 'Bearer t' } });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'auth=Bearer t'); // same origin: the header stays
    assert.equal(res.url, `http://127.0.0.1:${front.port}/hop?n=0`);
    await assert.rejects(guard.fetch(`http://127.0.0.1:${front.port}/hop?n=6`), /too many redirects \(at most 5\)/);
  });
});

describe('pinning', () => {
  test('a resolver that answers differently after the check cannot move the connection', async () => {
    const rx = await receiver('127.0.0.2');
    const good = await httpServer('127.0.0.1', (_req, res) => res.writeHead(200).end('checked address'));
    const answers: string[] = [];
    // Rebinding: the first answer is the allowed address, every later one the refused receiver.
    const rebinding: Resolver = async () => {
      const address = answers.length === 0 ? '127.0.0.1' : '127.0.0.2';
      answers.push(address);
      return [{ address, family: 4 }];
    };
    try {
      const guard = new OutboundGuard({ allow: ['127.0.0.1/32'], resolve: rebinding });
      for (let i = 0; i < 3; i++) {
        const res = await guard.fetch(`http://rebind.test:${good.port}/data`).catch((e: unknown) => e);
        if (res instanceof Response) {
          assert.equal(await res.text(), 'checked address');
        } else refused(res); // a later check sees the refused answer: refused, not connected
      }
      assert.equal(rx.connections(), 0, 'the second answer was never connected to');
      assert.equal(good.hosts[0], `rebind.test:${good.port}`, 'Host header keeps the name');
      assert.ok(good.hosts.length >= 1);
    } finally {
      await good.close();
      await rx.close();
    }
  });

  test('the connection goes to the checked address, not to a second lookup', async () => {
    // The resolver is asked once per check; Node's own lookup would have gone to real DNS for rebind.test.
    const good = await httpServer('127.0.0.1', (_req, res) => res.writeHead(200).end('ok'));
    let calls = 0;
    const guard = new OutboundGuard({
      allow: ['rebind.test'],
      resolve: async () => {
        calls++;
        return [{ address: '127.0.0.1', family: 4 }];
      },
    });
    try {
      const res = await guard.fetch(`http://rebind.test:${good.port}/`);
      assert.equal(await res.text(), 'ok');
      assert.equal(calls, 1);
    } finally {
      await good.close();
    }
  });
});

// A self-signed certificate for pinned.test, made for this test only (openssl req -x509, P-256, 100 years).
const PINNED_CERT = `-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUGG6nBL/CxcoxlIILP5M+WPGx1lEwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLcGlubmVkLnRlc3QwIBcNMjYxMTMwMDYyNDQyWhgPMjEyNjEx
MDYwNjI0NDJaMBYxFDASBgNVBAMMC3Bpbm5lZC50ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAESZsYMcVqwk23oAI4tldPyB1+adH9ucG76X6kWwtPymejhiCW
LOmcqU+pUKCI7MX229apshFdxawEZBAn1eEnJ6NrMGkwHQYDVR0OBBYEFKXwuQOj
a+KgG2UwLICq+oV3uHzMMB8GA1UdIwQYMBaAFKXwuQOja+KgG2UwLICq+oV3uHzM
MA8GA1UdEwEB/wQFMAMBAf8wFgYDVR0RBA8wDYILcGlubmVkLnRlc3QwCgYIKoZI
zj0EAwIDRwAwRAIgFW/RB1BJqoa8X44XTSkrthJZX0zzunYJ05cbGoBH1bUCIGMO
vf4q5E7DYUef6sq0ZKM/WJC8F5M4d3MjHmc97b94
-----END CERTIFICATE-----
`;
const PINNED_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgLdeI3TjzhS3n5/uP
F8fv76VKRll0yTRXGHu4YY1K7+uhRANCAARJmxgxxWrCTbegAji2V0/IHX5p0f25
wbvpfqRbC0/KZ6OGIJYs6ZypT6lQoIjsxfbb1qmyEV3FrARkECfV4Scn
-----END PRIVATE KEY-----
`;

describe('https through a pinned connection', () => {
  test('SNI, certificate check and Host header use the name while the socket goes to the checked address', async () => {
    const sni: string[] = [];
    const hosts: string[] = [];
    const server = createHttpsServer(
      {
        cert: PINNED_CERT,
        key: PINNED_KEY,
        SNICallback: (name, cb) => {
          sni.push(name);
          cb(null);
        },
      },
      (req, res) => {
        hosts.push(req.headers.host ?? '');
        res.writeHead(200).end('over tls');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const resolve: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];
    try {
      const guard = new OutboundGuard({ allow: ['127.0.0.1/32'], resolve, ca: PINNED_CERT });
      const res = await guard.fetch(`https://pinned.test:${port}/x`);
      assert.equal(await res.text(), 'over tls');
      assert.deepEqual(sni, ['pinned.test']);
      assert.deepEqual(hosts, [`pinned.test:${port}`]);
      // Without the CA the certificate is checked and refused: pinning does not switch verification off.
      await assert.rejects(new OutboundGuard({ allow: ['127.0.0.1/32'], resolve }).fetch(`https://pinned.test:${port}/x`), /self-signed|self signed/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('bodies, timeouts and errors', () => {
  let srv: Awaited<ReturnType<typeof httpServer>>;
  const guard = new OutboundGuard({ allow: ['127.0.0.1/32'], idleTimeoutMs: 300 });
  before(async () => {
    srv = await httpServer('127.0.0.1', (req, res) => {
      if (req.url === '/gzip') res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(Buffer.from('hello dataset')));
      else if (req.url === '/stall-headers') {
        /* never answers: the idle timeout must end it */
      } else if (req.url === '/stall-body') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
      } else if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('ten bytes!', () => res.socket?.destroy());
      } else if (req.url === '/stream') {
        res.writeHead(200);
        let i = 0;
        const tick = () => (i++ < 5 ? res.write(`chunk${i};`, () => setTimeout(tick, 5)) : res.end());
        tick();
      } else res.writeHead(404).end();
    });
  });
  after(() => srv.close());

  test('the body streams and is decoded as fetch would', async () => {
    const res = await guard.fetch(`http://127.0.0.1:${srv.port}/stream`);
    const reader = res.body!.getReader();
    let chunks = 0;
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks++;
      text += Buffer.from(value).toString();
    }
    assert.equal(text, 'chunk1;chunk2;chunk3;chunk4;chunk5;');
    assert.ok(chunks >= 2, `streamed in ${chunks} chunks`);
    assert.equal(await (await guard.fetch(`http://127.0.0.1:${srv.port}/gzip`)).text(), 'hello dataset');
  });

  test('a server that never answers, a stalled body and a cut body reject, with nothing unhandled', async () => {
    await assert.rejects(guard.fetch(`http://127.0.0.1:${srv.port}/stall-headers`), /no data for 300 ms/);
    const stalled = await guard.fetch(`http://127.0.0.1:${srv.port}/stall-body`);
    await assert.rejects(stalled.arrayBuffer());
    const cut = await guard.fetch(`http://127.0.0.1:${srv.port}/cut`);
    await assert.rejects(cut.arrayBuffer());
  });

  test('an abort signal ends the request', async () => {
    const slow = new OutboundGuard({ allow: ['127.0.0.1/32'] });
    await assert.rejects(slow.fetch(`http://127.0.0.1:${srv.port}/stall-headers`, { signal: AbortSignal.timeout(200) }), (e: unknown) => {
      assert.ok(e instanceof Error && /abort|timeout/i.test(`${e.name} ${e.message}`), String(e));
      return true;
    });
  });
});
