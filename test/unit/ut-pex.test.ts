import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.js';
import { encode } from '../../src/metainfo/bencode.js';
import {
  decodeUtPex,
  encodeUtPex,
  MAX_UT_PEX_PAYLOAD_BYTES,
  PEX_FLAGS,
  PEX_INTERVAL_MS,
  PEX_MAX_ADDED_PER_MESSAGE,
  PEX_MAX_DROPPED_PER_MESSAGE,
  PEX_MAX_RECEIVED_PER_LIST,
  type PexAddress,
  type PexPeer,
  PexState,
  type UtPexMessage,
} from '../../src/protocol/ut-pex.js';

const protocolError = { code: 'ERR_PEER_PROTOCOL' };
const internalError = { code: 'ERR_INTERNAL' };

/** The canonical (RFC 5952) form, computed independently by the WHATWG URL parser. */
const canonical6 = (host: string) => new URL(`http://[${host}]/`).hostname.slice(1, -1);

const port = fc.integer({ min: 1, max: 0xffff });
const peer4 = fc.tuple(fc.ipV4(), port).map(([host, port]) => ({ host, port }));
const peer6 = fc.tuple(fc.ipV6(), port).map(([host, port]) => ({ host, port }));
const flag = fc.integer({ min: 0, max: 0xff });

/** Lists within the send caps, each with or without flags. */
const message: fc.Arbitrary<UtPexMessage> = fc
  .record({
    added: fc.array(peer4, { maxLength: 25 }),
    added6: fc.array(peer6, { maxLength: 25 }),
    dropped: fc.array(peer4, { maxLength: 25 }),
    dropped6: fc.array(peer6, { maxLength: 25 }),
    withFlags: fc.boolean(),
    withFlags6: fc.boolean(),
    seed: fc.array(flag, { minLength: 25, maxLength: 25 }),
  })
  .map(({ withFlags, withFlags6, seed, ...m }) => ({
    ...m,
    ...(withFlags && { addedFlags: m.added.map((_, i) => seed[i]!) }),
    ...(withFlags6 && { added6Flags: m.added6.map((_, i) => seed[24 - i]!) }),
  }));

const v4 = (n: number): PexAddress => ({ host: `10.0.${n >> 8}.${n & 0xff}`, port: 6881 });
/** Canonical text, as PexState reports it. */
const v6 = (n: number): PexAddress => ({ host: `2001:db8::1:${n.toString(16)}`, port: 6881 });
const compact4 = (count: number, portOf = (_i: number) => 6881) =>
  Buffer.concat(
    Array.from({ length: count }, (_, i) =>
      Buffer.from([10, 0, i >> 8, i & 0xff, portOf(i) >> 8, portOf(i) & 0xff]),
    ),
  );
const compact6 = (count: number) =>
  Buffer.concat(
    Array.from({ length: count }, (_, i) =>
      Buffer.concat([
        Buffer.from('20010db8000000000000000000ab', 'hex'),
        Buffer.from([i >> 8, i & 0xff, 0x1a, 0xe1]),
      ]),
    ),
  );

describe('ut_pex codec (BEP 11)', () => {
  it('round-trips any message within the send caps, IPv6 hosts in canonical form', () => {
    fc.assert(
      fc.property(message, (m) => {
        const expected = {
          ...m,
          added6: m.added6.map((p) => ({ host: canonical6(p.host), port: p.port })),
          dropped6: m.dropped6.map((p) => ({ host: canonical6(p.host), port: p.port })),
        };
        assert.deepStrictEqual(decodeUtPex(encodeUtPex(m)), expected);
      }),
    );
  });

  it('encodes the exact bytes: every list key, flags only when given', () => {
    const bytes = encodeUtPex({
      added: [{ host: '127.0.0.1', port: 6881 }],
      addedFlags: [PEX_FLAGS.preferEncryption | PEX_FLAGS.reachable],
      added6: [{ host: '::1', port: 258 }],
      dropped: [],
      dropped6: [],
    });
    const expected = Buffer.concat([
      Buffer.from('d5:added6:'),
      Buffer.from([127, 0, 0, 1, 0x1a, 0xe1]),
      Buffer.from('7:added.f1:\x11'),
      Buffer.from('6:added618:'),
      Buffer.concat([Buffer.alloc(15), Buffer.from([1, 1, 2])]),
      Buffer.from('7:dropped0:8:dropped60:e'),
    ]);
    assert.deepEqual(bytes, expected);
  });

  it('decodes what another client sends: absent lists are empty, unknown keys ignored', () => {
    const payload = encode({ added: compact4(2), 'added.f': Buffer.from([0x02, 0x05]), extra: 7 });
    assert.deepStrictEqual(decodeUtPex(payload), {
      added: [
        { host: '10.0.0.0', port: 6881 },
        { host: '10.0.0.1', port: 6881 },
      ],
      addedFlags: [0x02, 0x05],
      added6: [],
      dropped: [],
      dropped6: [],
    });
    assert.deepStrictEqual(decodeUtPex(encode({})), { added: [], added6: [], dropped: [], dropped6: [] });
  });

  it('leaves out entries with port 0, together with their flags', () => {
    const payload = encode({
      added: compact4(3, (i) => (i === 1 ? 0 : 7000 + i)),
      'added.f': Buffer.from([1, 2, 3]),
      dropped: compact4(2, (i) => (i === 0 ? 0 : 9)),
    });
    const m = decodeUtPex(payload);
    assert.deepStrictEqual(m.added, [
      { host: '10.0.0.0', port: 7000 },
      { host: '10.0.0.2', port: 7002 },
    ]);
    assert.deepStrictEqual(m.addedFlags, [1, 3]);
    assert.deepStrictEqual(m.dropped, [{ host: '10.0.0.1', port: 9 }]);
  });

  it(`accepts PEX_MAX_RECEIVED_PER_LIST (${PEX_MAX_RECEIVED_PER_LIST}) entries per list and rejects one more`, () => {
    const lists: ['added' | 'added6' | 'dropped' | 'dropped6', (n: number) => Buffer][] = [
      ['added', compact4],
      ['added6', compact6],
      ['dropped', compact4],
      ['dropped6', compact6],
    ];
    for (const [key, make] of lists) {
      const ok = decodeUtPex(encode({ [key]: make(PEX_MAX_RECEIVED_PER_LIST) }));
      assert.equal(ok[key].length, PEX_MAX_RECEIVED_PER_LIST, key);
      assert.throws(
        () => decodeUtPex(encode({ [key]: make(PEX_MAX_RECEIVED_PER_LIST + 1) })),
        protocolError,
        key,
      );
    }
  });

  it(`accepts a payload of MAX_UT_PEX_PAYLOAD_BYTES (${MAX_UT_PEX_PAYLOAD_BYTES}) and rejects one byte more`, () => {
    const padded = (size: number) => {
      const head = encode({ added: compact4(1), pad: '' });
      return encode({ added: compact4(1), pad: 'x'.repeat(size - head.length - String(size).length + 1) });
    };
    const exact = padded(MAX_UT_PEX_PAYLOAD_BYTES);
    assert.equal(exact.length, MAX_UT_PEX_PAYLOAD_BYTES);
    assert.equal(decodeUtPex(exact).added.length, 1);
    const over = padded(MAX_UT_PEX_PAYLOAD_BYTES + 1);
    assert.equal(over.length, MAX_UT_PEX_PAYLOAD_BYTES + 1);
    assert.throws(() => decodeUtPex(over), { ...protocolError, message: /exceeds/ });
  });

  it('rejects flags whose length differs from their list, and lists of partial entries', () => {
    const hostile = [
      encode({ added: compact4(2), 'added.f': Buffer.from([1]) }),
      encode({ added: compact4(2), 'added.f': Buffer.from([1, 2, 3]) }),
      encode({ 'added.f': Buffer.from([1]) }),
      encode({ added6: compact6(1), 'added6.f': Buffer.alloc(0) }),
      encode({ added: Buffer.alloc(7) }),
      encode({ added6: Buffer.alloc(6) }),
      encode({ dropped: Buffer.alloc(5) }),
      encode({ dropped6: Buffer.alloc(19) }),
    ];
    for (const p of hostile) assert.throws(() => decodeUtPex(p), protocolError, p.toString('latin1'));
  });

  it('rejects wrong types, non-dicts, bad and trailing bencode', () => {
    const hostile = [
      Buffer.from('not bencode'),
      Buffer.from('le'),
      Buffer.from('i1e'),
      Buffer.concat([encode({ added: compact4(1) }), Buffer.from('x')]),
      encode({ added: 5 }),
      encode({ added6: [Buffer.alloc(18)] }),
      encode({ dropped: { a: 1 } }),
      encode({ added: compact4(1), 'added.f': 1 }),
      Buffer.alloc(0),
    ];
    for (const p of hostile) assert.throws(() => decodeUtPex(p), protocolError, p.toString('latin1'));
  });

  it('fails on arbitrary bytes only with ERR_PEER_PROTOCOL', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc
        .dictionary(
          fc.constantFrom('added', 'added.f', 'added6', 'added6.f', 'dropped', 'dropped6', 'x'),
          fc.oneof(fc.uint8Array({ maxLength: 60 }), fc.integer()),
        )
        .map((d) => encode(d)),
    );
    fc.assert(
      fc.property(bytes, (b) => {
        try {
          decodeUtPex(b);
        } catch (e) {
          assert.equal((e as { code?: string }).code, 'ERR_PEER_PROTOCOL');
        }
      }),
    );
  });

  it(`refuses to encode more than PEX_MAX_ADDED_PER_MESSAGE (${PEX_MAX_ADDED_PER_MESSAGE}) added or PEX_MAX_DROPPED_PER_MESSAGE (${PEX_MAX_DROPPED_PER_MESSAGE}) dropped, families together`, () => {
    const list = (n: number, f: (i: number) => PexAddress) => Array.from({ length: n }, (_, i) => f(i));
    const empty = { added: [], added6: [], dropped: [], dropped6: [] };
    encodeUtPex({ ...empty, added: list(30, v4), added6: list(20, v6) });
    encodeUtPex({ ...empty, dropped: list(25, v4), dropped6: list(25, v6) });
    assert.throws(() => encodeUtPex({ ...empty, added: list(30, v4), added6: list(21, v6) }), internalError);
    assert.throws(() => encodeUtPex({ ...empty, added: list(51, v4) }), internalError);
    assert.throws(
      () => encodeUtPex({ ...empty, dropped: list(1, v4), dropped6: list(50, v6) }),
      internalError,
    );
  });

  it('refuses to encode a wrong family, a bad port, bad flags', () => {
    const empty = { added: [], added6: [], dropped: [], dropped6: [] };
    const bad: UtPexMessage[] = [
      { ...empty, added: [{ host: '::1', port: 1 }] },
      { ...empty, added6: [{ host: '127.0.0.1', port: 1 }] },
      { ...empty, dropped: [{ host: 'localhost', port: 1 }] },
      { ...empty, added: [{ host: '127.0.0.1', port: 0 }] },
      { ...empty, dropped6: [{ host: '::1', port: 65536 }] },
      { ...empty, added: [v4(1)], addedFlags: [256] },
      { ...empty, added: [v4(1)], addedFlags: [] },
      { ...empty, added6: [v6(1)], added6Flags: [1, 2] },
    ];
    for (const m of bad) assert.throws(() => encodeUtPex(m), internalError, JSON.stringify(m));
  });
});

describe('PexState: what to tell one peer, and when', () => {
  const connected = (addresses: readonly PexAddress[], flags = 0): PexPeer[] =>
    addresses.map((address) => ({ address, flags }));

  it('first message: every connected peer, split by family, with flags; IPv4-mapped counts as IPv4', () => {
    const pex = new PexState({ clock: new ManualClock() });
    const m = pex.next([
      { address: { host: '10.0.0.1', port: 1 }, flags: PEX_FLAGS.seed },
      { address: { host: '::ffff:10.0.0.2', port: 2 } },
      { address: { host: '2001:DB8:0:0::1', port: 3 }, flags: PEX_FLAGS.supportsUtp },
      { address: { host: '10.0.0.1', port: 1 }, flags: PEX_FLAGS.seed },
    ]);
    assert.deepStrictEqual(m, {
      added: [
        { host: '10.0.0.1', port: 1 },
        { host: '10.0.0.2', port: 2 },
      ],
      addedFlags: [PEX_FLAGS.seed, 0],
      added6: [{ host: '2001:db8::1', port: 3 }],
      added6Flags: [PEX_FLAGS.supportsUtp],
      dropped: [],
      dropped6: [],
    });
    assert.ok(m !== undefined);
    encodeUtPex(m);
  });

  it(`sends at most one message per PEX_INTERVAL_MS (${PEX_INTERVAL_MS} ms), then the diff since the last one`, () => {
    const clock = new ManualClock(5_000);
    const pex = new PexState({ clock });
    assert.equal(pex.nextAllowedAt, undefined);
    assert.ok(pex.next(connected([v4(1), v4(2)])));
    assert.equal(pex.nextAllowedAt, 5_000 + PEX_INTERVAL_MS);
    assert.equal(pex.next(connected([v4(2), v4(3)])), undefined, 'too soon');
    clock.advance(PEX_INTERVAL_MS - 1);
    assert.equal(pex.next(connected([v4(2), v4(3)])), undefined, 'still too soon');
    clock.advance(1);
    assert.equal(pex.nextAllowedAt, undefined);
    assert.deepStrictEqual(pex.next(connected([v4(2), v4(3), v6(4)])), {
      added: [v4(3)],
      addedFlags: [0],
      added6: [v6(4)],
      added6Flags: [0],
      dropped: [v4(1)],
      dropped6: [],
    });
  });

  it('sends nothing when nothing changed, and that does not use up the minute', () => {
    const clock = new ManualClock();
    const pex = new PexState({ clock });
    assert.equal(pex.next([]), undefined, 'no peers, no message');
    assert.ok(pex.next(connected([v4(1)])));
    clock.advance(PEX_INTERVAL_MS);
    // A peer that left and came back between two messages is no change.
    assert.equal(pex.next(connected([v4(1)])), undefined);
    clock.advance(1);
    assert.deepEqual(pex.next(connected([]))?.dropped, [v4(1)]);
  });

  it('caps added and dropped per message (families together) and sends the rest later', () => {
    const clock = new ManualClock();
    const pex = new PexState({ clock });
    const many = [
      ...Array.from({ length: 90 }, (_, i) => v4(i)),
      ...Array.from({ length: 30 }, (_, i) => v6(i)),
    ];
    const sizes: number[][] = [];
    const round = (peers: PexAddress[]) => {
      const m = pex.next(connected(peers));
      sizes.push(m ? [m.added.length, m.added6.length, m.dropped.length, m.dropped6.length] : []);
      if (m) encodeUtPex(m);
      clock.advance(PEX_INTERVAL_MS);
    };
    round(many);
    round(many);
    round(many);
    round(many);
    round([]);
    round([]);
    round([]);
    assert.deepEqual(sizes, [
      [50, 0, 0, 0],
      [40, 10, 0, 0],
      [0, 20, 0, 0],
      [],
      [0, 0, 50, 0],
      [0, 0, 40, 10],
      [0, 0, 0, 20],
    ]);
  });

  it('converges on the connected set and never repeats a peer in the same list (model check)', () => {
    const universe = [
      ...Array.from({ length: 80 }, (_, i) => v4(i)),
      ...Array.from({ length: 40 }, (_, i) => v6(i)),
    ];
    const key = (p: PexAddress) => `${p.host}|${p.port}`;
    fc.assert(
      fc.property(
        fc.array(fc.subarray(universe), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: 2 * PEX_INTERVAL_MS }), { minLength: 8, maxLength: 8 }),
        (rounds, gaps) => {
          const clock = new ManualClock();
          const pex = new PexState({ clock });
          const told = new Set<string>();
          let lastSent = -Infinity;
          const apply = (now: PexAddress[]) => {
            const m = pex.next(connected(now));
            if (m === undefined) return false;
            assert.ok(clock.now() - lastSent >= PEX_INTERVAL_MS);
            lastSent = clock.now();
            assert.ok(m.added.length + m.added6.length <= PEX_MAX_ADDED_PER_MESSAGE);
            assert.ok(m.dropped.length + m.dropped6.length <= PEX_MAX_DROPPED_PER_MESSAGE);
            const nowKeys = new Set(now.map(key));
            for (const p of [...m.added, ...m.added6]) {
              assert.ok(!told.has(key(p)) && nowKeys.has(key(p)));
              told.add(key(p));
            }
            for (const p of [...m.dropped, ...m.dropped6]) {
              assert.ok(told.has(key(p)) && !nowKeys.has(key(p)));
              told.delete(key(p));
            }
            return true;
          };
          rounds.forEach((now, i) => {
            apply(now);
            clock.advance(gaps[i] ?? 0);
          });
          const last = rounds.at(-1)!;
          for (let i = 0; i < 10; i++) {
            clock.advance(PEX_INTERVAL_MS);
            apply(last);
          }
          assert.deepEqual([...told].sort(), last.map(key).sort());
        },
      ),
    );
  });

  it('refuses peers that are not IP literals with a dialable port', () => {
    const pex = new PexState({ clock: new ManualClock() });
    assert.throws(() => pex.next([{ address: { host: 'example.org', port: 1 } }]), internalError);
    assert.throws(() => pex.next([{ address: { host: '10.0.0.1', port: 0 } }]), internalError);
    assert.throws(() => pex.next([{ address: v4(1), flags: -1 }]), internalError);
  });
});
