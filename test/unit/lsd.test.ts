import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  formatLsdAnnounce,
  LSD_ANNOUNCE_INTERVAL_MS,
  LSD_DEFAULT_GROUPS,
  LSD_INFOHASHES_PER_ANNOUNCE,
  LSD_IPV4_GROUP,
  LSD_IPV6_GROUP,
  LSD_MIN_MESSAGE_INTERVAL_MS,
  Lsd,
  LsdSchedule,
  MAX_LSD_HEADERS,
  MAX_LSD_INFOHASHES,
  MAX_LSD_MESSAGE_BYTES,
  parseLsdAnnounce,
} from '../../src/discovery/lsd.js';
import { type InfoHash, infoHashFromBytes } from '../../src/metainfo/infohash.js';

const lsdError = { code: 'ERR_LSD_MESSAGE' };
const ih = (n: number): InfoHash => infoHashFromBytes(Buffer.alloc(20, n));
const datagram = (text: string) => Buffer.from(text, 'latin1');
/** A request with the given header lines. */
const request = (...headers: string[]) =>
  datagram(`BT-SEARCH * HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n\r\n`);

describe('LSD messages (BEP 14)', () => {
  it('formats exactly the announce of BEP 14, Host naming the group', () => {
    const v4 = formatLsdAnnounce({
      group: LSD_IPV4_GROUP,
      port: 6881,
      infoHashes: [ih(1), ih(2)],
      cookie: 'c00k1e',
    });
    assert.equal(
      v4.toString('latin1'),
      'BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 6881\r\n' +
        `Infohash: ${'01'.repeat(20)}\r\nInfohash: ${'02'.repeat(20)}\r\ncookie: c00k1e\r\n\r\n\r\n`,
    );
    const v6 = formatLsdAnnounce({ group: LSD_IPV6_GROUP, port: 1, infoHashes: [ih(3)] });
    assert.equal(
      v6.toString('latin1'),
      `BT-SEARCH * HTTP/1.1\r\nHost: [ff15::efc0:988f]:6771\r\nPort: 1\r\nInfohash: ${'03'.repeat(20)}\r\n\r\n\r\n`,
    );
    assert.deepEqual(LSD_DEFAULT_GROUPS, [LSD_IPV4_GROUP, LSD_IPV6_GROUP]);
  });

  it('parses what it formats', () => {
    const announce = fc.record({
      port: fc.integer({ min: 1, max: 0xffff }),
      infoHashes: fc.uniqueArray(fc.uint8Array({ minLength: 20, maxLength: 20 }).map(infoHashFromBytes), {
        minLength: 1,
        maxLength: LSD_INFOHASHES_PER_ANNOUNCE,
      }),
      cookie: fc.option(fc.stringMatching(/^[0-9a-zA-Z_-]{1,64}$/), { nil: undefined }),
      group: fc.constantFrom(LSD_IPV4_GROUP, LSD_IPV6_GROUP, { host: '127.0.0.1', port: 1 }),
    });
    fc.assert(
      fc.property(announce, ({ cookie, group, ...a }) => {
        const parsed = parseLsdAnnounce(
          formatLsdAnnounce({ ...a, group, ...(cookie !== undefined && { cookie }) }),
        );
        assert.deepStrictEqual(parsed, {
          ...a,
          ...(cookie !== undefined && { cookie }),
          host: group.host.includes(':') ? `[${group.host}]:${group.port}` : `${group.host}:${group.port}`,
        });
      }),
    );
  });

  it('accepts any header case, unknown headers, upper-case hex, 0 or more trailing CRLFs; dedupes infohashes', () => {
    const upper = 'AB'.repeat(20);
    const text = `BT-SEARCH * HTTP/1.1\r\nhOsT:239.192.152.143:6771\r\nX-Whatever: yes\r\nPORT:  7000 \r\nINFOHASH: ${upper}\r\ninfohash: ${upper.toLowerCase()}\r\n\r\n`;
    assert.deepStrictEqual(parseLsdAnnounce(datagram(text)), {
      port: 7000,
      infoHashes: ['ab'.repeat(20)],
      host: '239.192.152.143:6771',
    });
    assert.equal(parseLsdAnnounce(datagram(`${text}\r\n\r\n`)).port, 7000);
  });

  it('rejects anything that is not a well-formed announce', () => {
    const good = [`Port: 1`, `Infohash: ${ih(1)}`];
    const hostile = [
      datagram(''),
      datagram('M-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\n'),
      datagram(`BT-SEARCH * HTTP/1.0\r\n${good.join('\r\n')}\r\n\r\n`),
      datagram(`BT-SEARCH * HTTP/1.1\n${good.join('\n')}\n\n`),
      datagram(`BT-SEARCH * HTTP/1.1\r\n${good.join('\r\n')}\r\n`),
      datagram(`BT-SEARCH * HTTP/1.1\r\n${good.join('\r\n')}\r\n\r\nbody`),
      request(`Infohash: ${ih(1)}`),
      request('Port: 1'),
      request('Port: 0', `Infohash: ${ih(1)}`),
      request('Port: 65536', `Infohash: ${ih(1)}`),
      request('Port: +1', `Infohash: ${ih(1)}`),
      request('Port: 0x10', `Infohash: ${ih(1)}`),
      request('Port:', `Infohash: ${ih(1)}`),
      request('Port: 1', 'Port: 2', `Infohash: ${ih(1)}`),
      request('Port: 1', `Infohash: ${ih(1)}x`),
      request('Port: 1', `Infohash: ${'g'.repeat(40)}`),
      request('Port: 1', 'Infohash: '),
      request(...good, 'cookie: a', 'cookie: b'),
      request(...good, 'no colon here'),
      request(...good, ' Leading: space'),
      request(...good, 'Bad\x01Name: x'),
      request(...good, 'X: a\rb'),
      request(...good, 'X: a\x00b'),
    ];
    for (const d of hostile)
      assert.throws(() => parseLsdAnnounce(d), lsdError, JSON.stringify(d.toString('latin1')));
  });

  it(`accepts MAX_LSD_MESSAGE_BYTES (${MAX_LSD_MESSAGE_BYTES}) bytes and rejects one more`, () => {
    const padded = (size: number) => {
      const bare = request('Port: 1', `Infohash: ${ih(1)}`, 'X-Pad: ');
      return request('Port: 1', `Infohash: ${ih(1)}`, `X-Pad: ${'p'.repeat(size - bare.length)}`);
    };
    assert.equal(padded(MAX_LSD_MESSAGE_BYTES).length, MAX_LSD_MESSAGE_BYTES);
    assert.equal(parseLsdAnnounce(padded(MAX_LSD_MESSAGE_BYTES)).port, 1);
    assert.equal(padded(MAX_LSD_MESSAGE_BYTES + 1).length, MAX_LSD_MESSAGE_BYTES + 1);
    assert.throws(() => parseLsdAnnounce(padded(MAX_LSD_MESSAGE_BYTES + 1)), {
      ...lsdError,
      message: /exceeds/,
    });
  });

  it(`accepts MAX_LSD_HEADERS (${MAX_LSD_HEADERS}) header lines and rejects one more`, () => {
    const withHeaders = (n: number) =>
      request('Port: 1', `Infohash: ${ih(1)}`, ...Array.from({ length: n - 2 }, (_, i) => `X${i}: y`));
    assert.equal(parseLsdAnnounce(withHeaders(MAX_LSD_HEADERS)).port, 1);
    assert.throws(() => parseLsdAnnounce(withHeaders(MAX_LSD_HEADERS + 1)), {
      ...lsdError,
      message: /headers/,
    });
  });

  it(`accepts MAX_LSD_INFOHASHES (${MAX_LSD_INFOHASHES}) infohashes and rejects one more`, () => {
    const withHashes = (n: number) =>
      request('Port: 1', ...Array.from({ length: n }, (_, i) => `Infohash: ${ih(i + 1)}`));
    assert.ok(
      withHashes(MAX_LSD_INFOHASHES + 1).length <= MAX_LSD_MESSAGE_BYTES,
      'the size bound is not what fails',
    );
    assert.equal(parseLsdAnnounce(withHashes(MAX_LSD_INFOHASHES)).infoHashes.length, MAX_LSD_INFOHASHES);
    assert.throws(() => parseLsdAnnounce(withHashes(MAX_LSD_INFOHASHES + 1)), {
      ...lsdError,
      message: /infohashes/,
    });
  });

  it('fails on arbitrary datagrams only with ERR_LSD_MESSAGE', () => {
    const lines = fc.array(
      fc.oneof(
        fc.constantFrom(
          'Port: 6881',
          `Infohash: ${ih(1)}`,
          'cookie: x',
          'Host: a',
          '',
          'BT-SEARCH * HTTP/1.1',
        ),
        fc.string({ maxLength: 50 }),
      ),
      { maxLength: 40 },
    );
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 1500 }),
      lines.map((l) => datagram(`BT-SEARCH * HTTP/1.1\r\n${l.join('\r\n')}\r\n\r\n`)),
    );
    fc.assert(
      fc.property(input, (d) => {
        try {
          parseLsdAnnounce(d);
        } catch (e) {
          assert.equal((e as { code?: string }).code, 'ERR_LSD_MESSAGE');
        }
      }),
    );
  });

  it('refuses to format out-of-bounds announces', () => {
    const g = LSD_IPV4_GROUP;
    const internal = { code: 'ERR_INTERNAL' };
    assert.throws(() => formatLsdAnnounce({ group: g, port: 1, infoHashes: [] }), internal);
    const many = Array.from({ length: MAX_LSD_INFOHASHES + 1 }, (_, i) => ih(i));
    assert.throws(() => formatLsdAnnounce({ group: g, port: 1, infoHashes: many }), internal);
    assert.throws(() => formatLsdAnnounce({ group: g, port: 0, infoHashes: [ih(1)] }), internal);
    assert.throws(
      () => formatLsdAnnounce({ group: g, port: 1, infoHashes: [ih(1)], cookie: 'a\r\nPort: 2' }),
      internal,
    );
  });
});

describe('LsdSchedule: BEP 14 rate rules', () => {
  it('announces new torrents at once, then each every LSD_ANNOUNCE_INTERVAL_MS, one message a minute at most', () => {
    const s = new LsdSchedule();
    assert.equal(s.nextAt(0), undefined, 'nothing tracked, nothing to send');
    s.add(ih(1));
    assert.equal(s.nextAt(1000), 1000);
    assert.deepEqual(s.take(1000), [ih(1)]);
    s.add(ih(2));
    assert.equal(s.nextAt(1000), 1000 + LSD_MIN_MESSAGE_INTERVAL_MS, 'one message per minute');
    assert.deepEqual(s.take(1000 + LSD_MIN_MESSAGE_INTERVAL_MS - 1), []);
    assert.deepEqual(s.take(1000 + LSD_MIN_MESSAGE_INTERVAL_MS), [ih(2)]);
    assert.equal(s.nextAt(1000 + LSD_MIN_MESSAGE_INTERVAL_MS), 1000 + LSD_ANNOUNCE_INTERVAL_MS);
    assert.deepEqual(s.take(1000 + LSD_ANNOUNCE_INTERVAL_MS - 1), [], 'not due yet');
    assert.deepEqual(s.take(1000 + LSD_ANNOUNCE_INTERVAL_MS), [ih(1)]);
    s.delete(ih(2));
    assert.equal(s.nextAt(1000 + LSD_ANNOUNCE_INTERVAL_MS), 1000 + 2 * LSD_ANNOUNCE_INTERVAL_MS);
  });

  it(`batches up to LSD_INFOHASHES_PER_ANNOUNCE (${LSD_INFOHASHES_PER_ANNOUNCE}), never-announced first, then the oldest`, () => {
    const s = new LsdSchedule();
    const all = Array.from({ length: 45 }, (_, i) => ih(i));
    for (const h of all.slice(0, 30)) s.add(h);
    const t = LSD_MIN_MESSAGE_INTERVAL_MS;
    assert.deepEqual(s.take(0), all.slice(0, 20));
    for (const h of all.slice(30)) s.add(h);
    assert.deepEqual(s.take(t), [...all.slice(20, 30), ...all.slice(30, 40)]);
    assert.deepEqual(s.take(2 * t), all.slice(40, 45));
    assert.deepEqual(s.take(3 * t), []);
    assert.equal(s.nextAt(3 * t), LSD_ANNOUNCE_INTERVAL_MS);
    assert.deepEqual(s.take(LSD_ANNOUNCE_INTERVAL_MS), all.slice(0, 20));
    assert.deepEqual(s.take(LSD_ANNOUNCE_INTERVAL_MS + t), all.slice(20, 40));
  });

  it('never sends two messages within a minute nor a torrent twice within the interval (model check)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            dt: fc.integer({ min: 0, max: 200_000 }),
            add: fc.nat(40),
            del: fc.option(fc.nat(40)),
          }),
          { maxLength: 60 },
        ),
        (steps) => {
          const s = new LsdSchedule();
          let now = 0;
          let lastMessage = Number.NEGATIVE_INFINITY;
          const lastOf = new Map<InfoHash, number>();
          for (const step of steps) {
            now += step.dt;
            s.add(ih(step.add));
            if (step.del !== null) {
              s.delete(ih(step.del));
              lastOf.delete(ih(step.del));
            }
            const next = s.nextAt(now);
            assert.ok(next === undefined ? s.size === 0 : next >= now);
            const sent = s.take(now);
            assert.equal(sent.length > 0, next === now, 'take() sends exactly when nextAt() says so');
            if (sent.length === 0) continue;
            assert.ok(now - lastMessage >= LSD_MIN_MESSAGE_INTERVAL_MS);
            assert.ok(sent.length <= LSD_INFOHASHES_PER_ANNOUNCE);
            lastMessage = now;
            for (const h of sent) {
              assert.ok(now - (lastOf.get(h) ?? Number.NEGATIVE_INFINITY) >= LSD_ANNOUNCE_INTERVAL_MS);
              lastOf.set(h, now);
            }
          }
        },
      ),
    );
  });
});

describe('Lsd', () => {
  it('does no network work before start(), and close() without start() is fine', async () => {
    const lsd = new Lsd({ port: 6881 });
    lsd.track(ih(1));
    assert.deepEqual(lsd.addresses(), []);
    await lsd.close();
    await assert.rejects(lsd.start(), { code: 'ERR_INTERNAL' });
  });

  it('refuses a bad port or cookie at construction', () => {
    assert.throws(() => new Lsd({ port: 0 }), { code: 'ERR_INTERNAL' });
    assert.throws(() => new Lsd({ port: 1, cookie: 'a b' }), { code: 'ERR_INTERNAL' });
  });
});
