// The outbound guard's address classifier and URL check, over every refused
// class and the spellings that reach them. Nothing here connects anywhere:
// names are answered by an injected resolver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyAddress,
  OutboundGuard,
  OutboundRefusedError,
  parseAllowList,
  parseIPv4,
  type AddressClass,
  type Resolver,
} from '../../src/runtime/outbound.js';

const CLASSES: Array<[string, AddressClass | null]> = [
  // loopback, every spelling
  ['127.0.0.1', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['2130706433', 'loopback'],
  ['0x7f000001', 'loopback'],
  ['0x7F.0.0.1', 'loopback'],
  ['0177.0.0.1', 'loopback'],
  ['0177.0000.0000.0001', 'loopback'],
  ['127.1', 'loopback'],
  ['127.0.1', 'loopback'],
  ['127.0.0.1.', 'loopback'],
  ['::1', 'loopback'],
  ['[::1]', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['::ffff:127.0.0.1', 'loopback'],
  ['[::ffff:127.0.0.1]', 'loopback'],
  ['[::ffff:7f00:1]', 'loopback'],
  ['::127.0.0.1', 'loopback'], // IPv4-compatible
  ['::ffff:0:127.0.0.1', 'loopback'], // IPv4-translated
  ['64:ff9b::7f00:1', 'loopback'], // NAT64
  ['2002:7f00:1::', 'loopback'], // 6to4
  // private
  ['10.0.0.1', 'private'],
  ['012.0.0.1', 'private'], // octal 10
  ['167772161', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['0xc0a80101', 'private'],
  ['::ffff:192.168.1.1', 'private'],
  ['64:ff9b:1::1', 'private'],
  // link-local, metadata endpoints
  ['169.254.169.254', 'link-local'],
  ['0xa9fea9fe', 'link-local'],
  ['2852039166', 'link-local'],
  ['0251.0376.0251.0376', 'link-local'],
  ['::ffff:169.254.169.254', 'link-local'],
  ['::ffff:a9fe:a9fe', 'link-local'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['febf::1', 'link-local'],
  ['2002:a9fe:a9fe::1', 'link-local'],
  ['fd00:ec2::254', 'unique-local'],
  // CGNAT
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  // multicast
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['ff02::1', 'multicast'],
  // unspecified
  ['0.0.0.0', 'unspecified'],
  ['0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['::', 'unspecified'],
  ['[::]', 'unspecified'],
  ['::ffff:0.0.0.0', 'unspecified'],
  // broadcast
  ['255.255.255.255', 'broadcast'],
  ['4294967295', 'broadcast'],
  // reserved, benchmark, documentation
  ['240.0.0.1', 'reserved'],
  ['192.0.0.8', 'reserved'],
  ['192.88.99.1', 'reserved'],
  ['198.18.0.1', 'benchmark'],
  ['198.19.255.255', 'benchmark'],
  ['192.0.2.1', 'documentation'],
  ['198.51.100.7', 'documentation'],
  ['203.0.113.9', 'documentation'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation'],
  ['2001:2::1', 'benchmark'],
  ['2001::1', 'reserved'], // Teredo
  ['100::1', 'reserved'],
  ['::8.8.8.8', 'reserved'], // IPv4-compatible never reaches a public host
  ['4000::1', 'reserved'], // outside 2000::/3
  // unique-local and site-local
  ['fc00::1', 'unique-local'],
  ['fdff:ffff::1', 'unique-local'],
  ['fec0::1', 'site-local'],
  ['feff::1', 'site-local'],
  // public
  ['8.8.8.8', 'public'],
  ['134744072', 'public'],
  ['93.184.216.34', 'public'],
  ['172.32.0.1', 'public'],
  ['100.128.0.1', 'public'],
  ['169.255.0.1', 'public'],
  ['::ffff:8.8.8.8', 'public'],
  ['64:ff9b::808:808', 'public'],
  ['2606:4700:4700::1111', 'public'],
  ['2a00:1450:4001::1', 'public'],
  // not addresses: host names
  ['example.com', null],
  ['localhost', null],
  ['256.0.0.1', null],
  ['1.2.3.4.5', null],
  ['08.0.0.1', null],
  ['0x', 'unspecified'], // WHATWG: "0x" is 0
  ['4294967296', null],
];

test('classifyAddress: every refused class under every spelling, and public addresses', () => {
  for (const [address, want] of CLASSES) assert.equal(classifyAddress(address), want, address);
});

test('the WHATWG URL parser agrees with parseIPv4 on the spellings a URL may carry', () => {
  for (const spelling of ['2130706433', '0x7f000001', '0177.0.0.1', '127.1', '127.0.0.1.', '0xa9fea9fe', '012.0.0.1']) {
    const host = new URL(`http://${spelling}/x`).hostname;
    const n = parseIPv4(host);
    assert.equal(n, parseIPv4(spelling), `${spelling} -> ${host}`);
  }
  assert.equal(new URL('http://[::ffff:127.0.0.1]/').hostname, '[::ffff:7f00:1]');
  assert.equal(classifyAddress(new URL('http://[::ffff:127.0.0.1]/').hostname), 'loopback');
});

/** A resolver over a fixed table that counts its calls; unknown names fail like NXDOMAIN. */
function tableResolver(table: Record<string, string[]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const fn = async (host: string) => {
    calls.push(host);
    const found = table[host];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(fn, { calls });
}

const refused = (e: unknown) => {
  assert.ok(e instanceof OutboundRefusedError, `OutboundRefusedError expected, got ${String(e)}`);
  assert.equal(e.message, 'URL is not allowed: it does not resolve to a public address');
  return true;
};

test('check refuses literal hosts of refused classes in every URL spelling, without resolving', async () => {
  const resolver = tableResolver({});
  const guard = new OutboundGuard({ resolve: resolver });
  const urls = [
    'http://127.0.0.1/',
    'http://2130706433/',
    'http://0x7f000001:5432/',
    'http://0177.0.0.1/',
    'http://127.1/',
    'http://127.0.0.1./',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[::ffff:7f00:1]/',
    'http://169.254.169.254/latest/meta-data/',
    'https://[fd00:ec2::254]/',
    'http://[fe80::1]/',
    'http://0.0.0.0/',
    'http://10.1.2.3/',
    'http://100.64.0.1/',
  ];
  for (const u of urls) await assert.rejects(guard.check(u), refused, u);
  assert.deepEqual(resolver.calls, []);
});

test('check refuses localhost names without resolving, other schemes, and names with any refused address', async () => {
  const resolver = tableResolver({
    'public.test': ['93.184.216.34'],
    'inside.test': ['10.0.0.5'],
    'mixed.test': ['93.184.216.34', '127.0.0.1'],
    'mapped.test': ['::ffff:169.254.169.254'],
    'public6.test': ['2606:4700:4700::1111'],
  });
  const guard = new OutboundGuard({ resolve: resolver });
  for (const u of ['http://localhost/', 'http://LOCALHOST./', 'http://db.localhost/', 'http://a.b.localhost../']) {
    await assert.rejects(guard.check(u), refused, u);
  }
  assert.deepEqual(resolver.calls, []);
  for (const u of ['http://inside.test/', 'http://mixed.test/', 'http://mapped.test/', 'http://nowhere.test/', 'ftp://public.test/', 'file:///etc/passwd', 'gopher://public.test/']) {
    await assert.rejects(guard.check(u), refused, u);
  }
  const ok = await guard.check('https://public.test/data.npz');
  assert.equal(ok.address, '93.184.216.34');
  assert.equal(ok.family, 4);
  const ok6 = await guard.check('http://public6.test/');
  assert.equal(ok6.family, 6);
  assert.equal((await guard.check('http://93.184.216.34/')).address, '93.184.216.34');
});

test('the allow list lets named hosts and ranges through, and nothing else', async () => {
  const resolver = tableResolver({ 'minio.internal': ['10.0.0.7'], 'other.internal': ['10.0.0.8'], 'lab.test': ['192.168.5.5'] });
  const guard = new OutboundGuard({ resolve: resolver, allow: ['minio.internal.', '127.0.0.1/32', '192.168.5.0/24', 'fd12::/16'] });
  assert.equal((await guard.check('http://minio.internal/x')).address, '10.0.0.7');
  assert.equal((await guard.check('http://lab.test/x')).address, '192.168.5.5');
  assert.equal((await guard.check('http://127.0.0.1:9/x')).address, '127.0.0.1');
  assert.equal((await guard.check('http://[::ffff:127.0.0.1]/x')).address, '::ffff:7f00:1');
  assert.equal((await guard.check('http://[fd12::1]/x')).address, 'fd12::1');
  for (const u of ['http://other.internal/', 'http://127.0.0.2/', 'http://[::1]/', 'http://192.168.6.1/', 'http://localhost/']) {
    await assert.rejects(guard.check(u), refused, u);
  }
});

test('parseAllowList accepts names, addresses and CIDRs and names a bad entry', () => {
  const list = parseAllowList(['Example.COM', ' 10.0.0.0/8 ', '::1', '']);
  assert.deepEqual([...list.names], ['example.com']);
  assert.equal(list.ranges.length, 2);
  assert.throws(() => parseAllowList(['10.0.0.0/33']), /'10.0.0.0\/33': prefix length must be 0-32/);
  assert.throws(() => parseAllowList(['a b']), /'a b' is neither a host name nor an address range/);
  assert.throws(() => parseAllowList(['host/8']), /neither a host name nor an address range/);
});
