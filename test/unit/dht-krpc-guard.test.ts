import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/clock.js';
import {
  BEP44_MAX_SALT_BYTES,
  BEP44_MAX_VALUE_BYTES,
  KRPC_QUERY_TTL_MS,
  type KrpcEndpoint,
  KrpcGuard,
  MAX_KRPC_CONTACTS,
  MAX_KRPC_DEPTH,
  MAX_KRPC_ERROR_ITEMS,
  MAX_KRPC_ITEMS,
  MAX_KRPC_MESSAGE_BYTES,
  MAX_KRPC_OUTBOUND_ITEMS,
  MAX_KRPC_PENDING_QUERIES,
  MAX_KRPC_TID_BYTES,
  MAX_KRPC_TOKEN_BYTES,
  MAX_KRPC_VALUES,
} from '../../src/discovery/dht-krpc-guard.js';
import {
  type BDict,
  decode,
  type Encodable,
  encode,
  getBytes,
  getDict,
  getList,
} from '../../src/metainfo/bencode.js';

const ID = Buffer.alloc(20, 0xaa);
const HASH = Buffer.alloc(20, 0xbb);
const NODE: KrpcEndpoint = { host: '127.0.0.1', port: 6881 };
const PUBLIC_NODE: KrpcEndpoint = { host: '93.184.216.34', port: 6881 };

function query(q: string, a: Record<string, Encodable>, t: Encodable = 'aa'): Buffer {
  return encode({ t, y: 'q', q, a: { id: ID, ...a } });
}

function reply(r: Record<string, Encodable>, t: Encodable = 'aa'): Buffer {
  return encode({ t, y: 'r', r: { id: ID, ...r } });
}

function compactNode(ip: string, port: number, idByte = 1): Buffer {
  const b = Buffer.alloc(26, idByte);
  Buffer.from(ip.split('.').map(Number)).copy(b, 20);
  b.writeUInt16BE(port, 24);
  return b;
}

function compactPeer(ip: string, port: number): Buffer {
  const b = Buffer.alloc(6);
  Buffer.from(ip.split('.').map(Number)).copy(b, 0);
  b.writeUInt16BE(port, 4);
  return b;
}

/** A guard that has sent query `t` to `to` (so a reply from there is expected). */
function expecting(to: KrpcEndpoint, t = 'aa', clock = new ManualClock()): KrpcGuard {
  const g = new KrpcGuard({ clock });
  assert.ok(g.outbound(query('find_node', { target: HASH }, t), to));
  return g;
}

function dropped(g: KrpcGuard): Record<string, number> {
  return Object.fromEntries(Object.entries(g.stats().dropped).filter(([, n]) => n > 0));
}

function replyField(bytes: Uint8Array | undefined): BDict {
  assert.ok(bytes);
  const r = getDict(decode(bytes) as BDict, 'r');
  assert.ok(r);
  return r;
}

describe('KrpcGuard: what the library would crash or hang on never reaches it', () => {
  // Each of these, sent to a bare bittorrent-dht 11, throws in its socket handler (process exit)
  // or, for the negative string length, loops for ever in its bencode decoder.
  const hostile: [string, Buffer][] = [
    ['announce_peer with an integer token', query('announce_peer', { info_hash: HASH, port: 1, token: 5 })],
    ['get_peers with an integer info_hash', query('get_peers', { info_hash: 5 })],
    ['get with an integer target', query('get', { target: 5 })],
    ['find_node with an integer target', query('find_node', { target: 5 })],
    ['put with an integer token', query('put', { v: 'x', token: 5 })],
    ['a query whose id is an integer', query('ping', { id: 5 })],
    ['a query without arguments', encode({ t: 'aa', y: 'q', q: 'ping' })],
    ['a negative string length', Buffer.from('d1:tl-3:ee1:y1:qe')],
    ['a dict key __proto__', query('ping', { x: new Map([['__proto__', 1]]) })],
    ['a mutable put without a signature', query('put', { v: 'x', token: 'tk', k: Buffer.alloc(32), seq: 1 })],
    [
      'a put with a negative seq',
      query('put', { v: 'x', token: 'tk', k: Buffer.alloc(32), sig: Buffer.alloc(64), seq: -1 }),
    ],
    ['announce_peer without a port', query('announce_peer', { info_hash: HASH, token: 'tk' })],
    ['announce_peer to port 0', query('announce_peer', { info_hash: HASH, token: 'tk', port: 0 })],
    ['a transaction id that is an integer', query('ping', {}, 7)],
    ['an empty transaction id', query('ping', {}, '')],
    ['y that is not q, r or e', encode({ t: 'aa', y: 'x' })],
    ['a list, not a dict', Buffer.from('l1:te')],
    ['a list with a negative string length', Buffer.from('l-3:e')],
    ['trailing bytes', Buffer.concat([query('ping', {}), Buffer.from('x')])],
  ];
  for (const [name, msg] of hostile) {
    test(`drops ${name}`, () => {
      const g = new KrpcGuard();
      assert.equal(g.inbound(msg, NODE), undefined);
      const { foreign, dropped } = g.stats();
      assert.equal(foreign + Object.values(dropped).reduce((a, b) => a + b, 0), 1);
    });
  }

  test('a reply whose id is not 20 bytes is dropped even when expected', () => {
    const g = expecting(NODE);
    assert.equal(g.inbound(encode({ t: 'aa', y: 'r', r: { id: 5 } }), NODE), undefined);
    assert.deepEqual(dropped(g), { shape: 1 });
  });

  test('well-formed queries pass unchanged', () => {
    const g = new KrpcGuard();
    const ok = [
      query('ping', {}),
      query('find_node', { target: HASH }),
      query('get_peers', { info_hash: HASH }),
      query('announce_peer', { info_hash: HASH, token: 'tk', port: 6881 }),
      query('announce_peer', { info_hash: HASH, token: 'tk', implied_port: 1, port: 0 }),
      query('get', { target: HASH, seq: 3 }),
      query('put', { v: 'hello', token: 'tk' }),
      query('put', { v: 'x', token: 'tk', k: Buffer.alloc(32), sig: Buffer.alloc(64), seq: 0, salt: 's' }),
    ];
    for (const msg of ok) assert.equal(g.inbound(msg, NODE), msg);
    assert.deepEqual(dropped(g), {});
  });

  test('unknown query methods are dropped', () => {
    const g = new KrpcGuard();
    assert.equal(g.inbound(query('sample_infohashes', { target: HASH }), NODE), undefined);
    assert.deepEqual(dropped(g), { query: 1 });
  });

  test('datagrams of another protocol are counted apart and dropped', () => {
    const g = new KrpcGuard();
    assert.equal(g.inbound(Buffer.from([0x41, 0x00, 0x12, 0x34]), NODE), undefined);
    assert.equal(g.inbound(Buffer.alloc(0), NODE), undefined);
    assert.equal(g.stats().foreign, 2);
    assert.deepEqual(dropped(g), {});
  });

  test('senders at unusable addresses or port 0 are dropped', () => {
    const g = new KrpcGuard();
    assert.equal(g.inbound(query('ping', {}), { host: '0.0.0.0', port: 1 }), undefined);
    assert.equal(g.inbound(query('ping', {}), { host: '224.0.0.1', port: 1 }), undefined);
    assert.equal(g.inbound(query('ping', {}), { host: '127.0.0.1', port: 0 }), undefined);
    assert.deepEqual(dropped(g), { sender: 3 });
  });
});

describe('KrpcGuard: bounds (each one element past is refused)', () => {
  test(`MAX_KRPC_MESSAGE_BYTES (${MAX_KRPC_MESSAGE_BYTES})`, () => {
    const g = new KrpcGuard();
    const fill = (n: number) => query('ping', { pad: Buffer.alloc(n) });
    const base = fill(0).length;
    const padFor = (total: number) => {
      let n = total - base;
      while (fill(n).length > total) n--;
      return n;
    };
    const exact = fill(padFor(MAX_KRPC_MESSAGE_BYTES));
    assert.equal(exact.length, MAX_KRPC_MESSAGE_BYTES);
    assert.equal(g.inbound(exact, NODE), exact);
    const over = fill(padFor(MAX_KRPC_MESSAGE_BYTES) + 1);
    assert.equal(over.length, MAX_KRPC_MESSAGE_BYTES + 1);
    assert.equal(g.inbound(over, NODE), undefined);
    assert.deepEqual(dropped(g), { size: 1 });
  });

  test(`MAX_KRPC_DEPTH (${MAX_KRPC_DEPTH})`, () => {
    const g = new KrpcGuard();
    // The message dict and its 'a' dict are two levels; the rest is a nested list.
    const nested = (levels: number): Encodable => (levels === 0 ? 1 : [nested(levels - 1)]);
    assert.ok(g.inbound(query('ping', { deep: nested(MAX_KRPC_DEPTH - 2) }), NODE));
    assert.equal(g.inbound(query('ping', { deep: nested(MAX_KRPC_DEPTH - 1) }), NODE), undefined);
    assert.deepEqual(dropped(g), { bencode: 1 });
  });

  test(`MAX_KRPC_ITEMS (${MAX_KRPC_ITEMS})`, () => {
    const g = new KrpcGuard();
    // Entries: t, y, q, a (4), id, list (2): 6 besides the list elements.
    const list = (n: number) => query('ping', { l: Array.from({ length: n }, () => 0) });
    assert.ok(g.inbound(list(MAX_KRPC_ITEMS - 6), NODE));
    assert.equal(g.inbound(list(MAX_KRPC_ITEMS - 5), NODE), undefined);
    assert.deepEqual(dropped(g), { bencode: 1 });
  });

  test(`MAX_KRPC_TID_BYTES (${MAX_KRPC_TID_BYTES})`, () => {
    const g = new KrpcGuard();
    assert.ok(g.inbound(query('ping', {}, Buffer.alloc(MAX_KRPC_TID_BYTES)), NODE));
    assert.equal(g.inbound(query('ping', {}, Buffer.alloc(MAX_KRPC_TID_BYTES + 1)), NODE), undefined);
  });

  test(`MAX_KRPC_TOKEN_BYTES (${MAX_KRPC_TOKEN_BYTES})`, () => {
    const g = new KrpcGuard();
    const announce = (n: number) =>
      query('announce_peer', { info_hash: HASH, port: 1, token: Buffer.alloc(n) });
    assert.ok(g.inbound(announce(MAX_KRPC_TOKEN_BYTES), NODE));
    assert.equal(g.inbound(announce(MAX_KRPC_TOKEN_BYTES + 1), NODE), undefined);
  });

  test(`BEP44_MAX_VALUE_BYTES (${BEP44_MAX_VALUE_BYTES}) and BEP44_MAX_SALT_BYTES (${BEP44_MAX_SALT_BYTES})`, () => {
    const g = new KrpcGuard();
    // "996:" + 996 bytes = 1000 bytes bencoded.
    assert.ok(g.inbound(query('put', { v: Buffer.alloc(996), token: 'tk' }), NODE));
    assert.equal(g.inbound(query('put', { v: Buffer.alloc(997), token: 'tk' }), NODE), undefined);
    const mutable = (salt: number) =>
      query('put', {
        v: 'x',
        token: 'tk',
        k: Buffer.alloc(32),
        sig: Buffer.alloc(64),
        seq: 1,
        salt: Buffer.alloc(salt),
      });
    assert.ok(g.inbound(mutable(BEP44_MAX_SALT_BYTES), NODE));
    assert.equal(g.inbound(mutable(BEP44_MAX_SALT_BYTES + 1), NODE), undefined);
  });

  test(`MAX_KRPC_ERROR_ITEMS (${MAX_KRPC_ERROR_ITEMS})`, () => {
    const g = expecting(NODE, 'e1');
    assert.ok(g.outbound(query('ping', {}, 'e2'), NODE));
    const error = (e: Encodable[], t: string) => encode({ t, y: 'e', e });
    assert.ok(g.inbound(error([201, 'oops'], 'e1'), NODE));
    assert.equal(g.inbound(error([201, 'oops', 'more'], 'e2'), NODE), undefined);
  });

  test(`MAX_KRPC_CONTACTS (${MAX_KRPC_CONTACTS}): contacts past it are removed from a reply`, () => {
    const g = expecting(NODE);
    const nodes = Buffer.concat(
      Array.from({ length: MAX_KRPC_CONTACTS + 1 }, (_, i) => compactNode('127.0.0.1', 1000 + i)),
    );
    const kept = getBytes(replyField(g.inbound(reply({ nodes }), NODE)), 'nodes');
    assert.deepEqual(kept, nodes.subarray(0, MAX_KRPC_CONTACTS * 26));
  });

  test(`MAX_KRPC_VALUES (${MAX_KRPC_VALUES}): in replies we get and replies we send`, () => {
    const values = Array.from({ length: MAX_KRPC_VALUES + 1 }, (_, i) => compactPeer('127.0.0.1', 1000 + i));
    const g = expecting(NODE);
    const kept = getList(replyField(g.inbound(reply({ values }), NODE)), 'values');
    assert.deepEqual(kept, values.slice(0, MAX_KRPC_VALUES));
    const sent = getList(replyField(new KrpcGuard().outbound(reply({ values }), NODE)), 'values');
    assert.equal(sent?.length, MAX_KRPC_VALUES);
  });

  test(`MAX_KRPC_OUTBOUND_ITEMS (${MAX_KRPC_OUTBOUND_ITEMS}): our long peer lists are cut, not dropped`, () => {
    const g = new KrpcGuard();
    // Entries: t, y, r (3), id, values (2): 5 besides the peers.
    const values = (n: number) =>
      Array.from({ length: n }, (_, i) => compactPeer('127.0.0.1', (i % 60_000) + 1));
    const cut = getList(
      replyField(g.outbound(reply({ values: values(MAX_KRPC_OUTBOUND_ITEMS - 5) }), NODE)),
      'values',
    );
    assert.equal(cut?.length, MAX_KRPC_VALUES);
    assert.equal(g.outbound(reply({ values: values(MAX_KRPC_OUTBOUND_ITEMS - 4) }), NODE), undefined);
    assert.deepEqual(dropped(g), { bencode: 1 });
  });

  test(`MAX_KRPC_PENDING_QUERIES (${MAX_KRPC_PENDING_QUERIES}): the oldest query is forgotten`, () => {
    const g = new KrpcGuard({ clock: new ManualClock() });
    const tid = (i: number) => Buffer.from([i >> 8, i & 0xff]);
    for (let i = 0; i <= MAX_KRPC_PENDING_QUERIES; i++)
      assert.ok(g.outbound(query('ping', {}, tid(i)), NODE));
    assert.equal(g.inbound(reply({}, tid(0)), NODE), undefined);
    assert.ok(g.inbound(reply({}, tid(1)), NODE));
    assert.ok(g.inbound(reply({}, tid(MAX_KRPC_PENDING_QUERIES)), NODE));
    assert.deepEqual(dropped(g), { unsolicited: 1 });
  });

  test(`KRPC_QUERY_TTL_MS (${KRPC_QUERY_TTL_MS}): a later reply is unsolicited`, () => {
    const clock = new ManualClock();
    const g = expecting(NODE, 'aa', clock);
    assert.ok(g.outbound(query('ping', {}, 'bb'), NODE));
    clock.advance(KRPC_QUERY_TTL_MS - 1);
    assert.ok(g.inbound(reply({}, 'aa'), NODE));
    clock.advance(1);
    assert.equal(g.inbound(reply({}, 'bb'), NODE), undefined);
    assert.deepEqual(dropped(g), { unsolicited: 1 });
  });
});

describe('KrpcGuard: replies answer our queries only', () => {
  test('a reply nobody asked for is dropped', () => {
    const g = new KrpcGuard();
    assert.equal(g.inbound(reply({}), NODE), undefined);
    assert.equal(g.inbound(encode({ t: 'aa', y: 'e', e: [201, 'x'] }), NODE), undefined);
    assert.deepEqual(dropped(g), { unsolicited: 2 });
  });

  test('a reply from another port or with another transaction id is dropped', () => {
    const g = expecting(NODE);
    assert.equal(g.inbound(reply({}), { host: NODE.host, port: NODE.port + 1 }), undefined);
    assert.equal(g.inbound(reply({}, 'ab'), NODE), undefined);
    const msg = reply({});
    assert.equal(g.inbound(msg, NODE), msg);
    assert.equal(g.inbound(msg, NODE), undefined, 'a query is answered once');
    assert.deepEqual(dropped(g), { unsolicited: 3 });
  });

  test('malformed reply fields are dropped', () => {
    for (const r of [
      { nodes: Buffer.alloc(27) },
      { nodes: 5 },
      { values: Buffer.alloc(6) },
      { token: Buffer.alloc(0) },
      { v: 'x', k: Buffer.alloc(31), sig: Buffer.alloc(64), seq: 1 },
      { v: 'x', k: Buffer.alloc(32), sig: Buffer.alloc(64) },
    ]) {
      const g = expecting(NODE);
      assert.equal(g.inbound(reply(r), NODE), undefined, JSON.stringify(Object.keys(r)));
    }
  });
});

describe('KrpcGuard: address scopes', () => {
  test('a public node cannot point us at loopback, private or unusable addresses', () => {
    const g = expecting(PUBLIC_NODE);
    const good = compactNode('93.184.216.35', 6881);
    const nodes = Buffer.concat([
      compactNode('127.0.0.1', 22),
      compactNode('192.168.1.1', 80),
      compactNode('10.0.0.1', 80),
      compactNode('0.0.0.0', 80),
      compactNode('93.184.216.36', 0),
      good,
    ]);
    const values = [
      compactPeer('127.0.0.1', 22),
      compactPeer('172.16.0.1', 80),
      compactPeer('93.184.216.37', 6881),
    ];
    const r = replyField(g.inbound(reply({ nodes, values }), PUBLIC_NODE));
    assert.deepEqual(getBytes(r, 'nodes'), good);
    assert.deepEqual(getList(r, 'values'), [compactPeer('93.184.216.37', 6881)]);
    assert.equal(g.stats().contactsRemoved, 7);
  });

  test('a public node gets one contact per public IP in; peers may share an IP', () => {
    const g = expecting(PUBLIC_NODE);
    const nodes = Buffer.concat([compactNode('93.184.216.35', 1), compactNode('93.184.216.35', 2)]);
    const values = [
      compactPeer('93.184.216.37', 1),
      compactPeer('93.184.216.37', 2),
      compactPeer('93.184.216.37', 2),
    ];
    const r = replyField(g.inbound(reply({ nodes, values }), PUBLIC_NODE));
    assert.equal(getBytes(r, 'nodes')?.length, 26);
    assert.equal(getList(r, 'values')?.length, 2);
  });

  test('loopback nodes may list loopback and public contacts, many per IP', () => {
    const g = expecting(NODE);
    const nodes = Buffer.concat([
      compactNode('127.0.0.1', 1),
      compactNode('127.0.0.1', 2),
      compactNode('93.184.216.35', 3),
      compactNode('192.168.0.1', 4),
    ]);
    const r = replyField(g.inbound(reply({ nodes }), NODE));
    assert.deepEqual(getBytes(r, 'nodes'), nodes.subarray(0, 3 * 26));
  });

  test('IPv6 peers (18 bytes) are removed: the library would misread them', () => {
    const g = expecting(NODE);
    const r = replyField(
      g.inbound(reply({ values: [Buffer.alloc(18, 1), compactPeer('127.0.0.1', 5)] }), NODE),
    );
    assert.deepEqual(getList(r, 'values'), [compactPeer('127.0.0.1', 5)]);
  });

  test('nothing is sent to unusable addresses', () => {
    const g = new KrpcGuard();
    const msg = query('ping', {});
    for (const to of [
      { host: '0.0.0.0', port: 6881 },
      { host: '255.255.255.255', port: 6881 },
      { host: '239.1.2.3', port: 6881 },
      { host: '127.0.0.1', port: 0 },
      { host: 'router.example', port: 6881 },
    ]) {
      assert.equal(g.outbound(msg, to), undefined, to.host);
    }
    assert.deepEqual(dropped(g), { destination: 5 });
  });

  test('our replies to public nodes carry no loopback or private contacts', () => {
    const g = new KrpcGuard();
    const nodes = Buffer.concat([compactNode('127.0.0.1', 1), compactNode('93.184.216.35', 2)]);
    const values = [compactPeer('10.1.1.1', 1), compactPeer('93.184.216.37', 2)];
    const toPublic = replyField(g.outbound(reply({ nodes, values }), PUBLIC_NODE));
    assert.deepEqual(getBytes(toPublic, 'nodes'), compactNode('93.184.216.35', 2));
    assert.deepEqual(getList(toPublic, 'values'), [compactPeer('93.184.216.37', 2)]);
    const msg = reply({ nodes, values: [compactPeer('127.0.0.1', 1)] });
    assert.equal(g.outbound(msg, NODE), msg, 'a loopback node may hear of loopback addresses');
  });
});
