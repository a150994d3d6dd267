import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type MultipartPlan, planMultipart } from '../../src/http/multipart.js';
import type { ByteRange } from '../../src/http/range.js';

/** What a server writes for a plan: each part header, its bytes, then the trailer. */
function assemble(plan: MultipartPlan, data: Buffer): Buffer {
  return Buffer.concat([
    ...plan.parts.flatMap((p) => [p.header, data.subarray(p.range.start, p.range.end + 1)]),
    plan.trailer,
  ]);
}

describe('planMultipart', () => {
  it('frames the RFC 9110 §14.6 example exactly', () => {
    const data = Buffer.alloc(8000, 'x');
    data.fill('A', 500, 1000);
    data.fill('B', 7000, 8000);
    const ranges = [
      { start: 500, end: 999 },
      { start: 7000, end: 7999 },
    ];
    const plan = planMultipart(ranges, 8000, 'application/pdf', 'THIS_STRING_SEPARATES');
    assert.equal(plan.contentType, 'multipart/byteranges; boundary=THIS_STRING_SEPARATES');
    assert.equal(plan.boundary, 'THIS_STRING_SEPARATES');
    const expected =
      '\r\n--THIS_STRING_SEPARATES\r\n' +
      'Content-Type: application/pdf\r\n' +
      'Content-Range: bytes 500-999/8000\r\n' +
      '\r\n' +
      'A'.repeat(500) +
      '\r\n--THIS_STRING_SEPARATES\r\n' +
      'Content-Type: application/pdf\r\n' +
      'Content-Range: bytes 7000-7999/8000\r\n' +
      '\r\n' +
      'B'.repeat(1000) +
      '\r\n--THIS_STRING_SEPARATES--\r\n';
    const body = assemble(plan, data);
    assert.equal(body.toString('latin1'), expected);
    assert.equal(plan.contentLength, body.length);
    assert.deepEqual(
      plan.parts.map((p) => p.range),
      ranges,
    );
  });

  it('keeps the given order of ranges', () => {
    const plan = planMultipart(
      [
        { start: 5, end: 6 },
        { start: 0, end: 1 },
      ],
      10,
      'text/plain; charset=utf-8',
      'b',
    );
    const body = assemble(plan, Buffer.from('0123456789')).toString('latin1');
    assert.ok(body.indexOf('bytes 5-6/10') < body.indexOf('bytes 0-1/10'));
    assert.ok(body.includes('\r\n\r\n56\r\n--b\r\n'));
  });

  it('picks a fresh random boundary by default', () => {
    const ranges = [
      { start: 0, end: 0 },
      { start: 2, end: 2 },
    ];
    const a = planMultipart(ranges, 3, 'video/mp4');
    const b = planMultipart(ranges, 3, 'video/mp4');
    assert.match(a.boundary, /^[0-9a-f]{32}$/);
    assert.notEqual(a.boundary, b.boundary);
    assert.equal(a.contentType, `multipart/byteranges; boundary=${a.boundary}`);
  });

  it('refuses caller bugs: bad ranges, sizes, boundaries and content types', () => {
    const ok: ByteRange[] = [{ start: 0, end: 0 }];
    const cases: [ByteRange[], number, string, string][] = [
      [[], 10, 'video/mp4', 'b'],
      [[{ start: 0, end: 10 }], 10, 'video/mp4', 'b'],
      [[{ start: -1, end: 0 }], 10, 'video/mp4', 'b'],
      [[{ start: 3, end: 2 }], 10, 'video/mp4', 'b'],
      [[{ start: 0.5, end: 2 }], 10, 'video/mp4', 'b'],
      [ok, Number.NaN, 'video/mp4', 'b'],
      [ok, 10, 'video/mp4\r\nX-Injected: 1', 'b'],
      [ok, 10, '', 'b'],
      [ok, 10, 'video/mp4', ''],
      [ok, 10, 'video/mp4', 'a'.repeat(71)],
      [ok, 10, 'video/mp4', 'has space'],
      [ok, 10, 'video/mp4', 'semi;colon'],
      [ok, 10, 'video/mp4', 'x\r\ny'],
    ];
    for (const [ranges, size, type, boundary] of cases) {
      assert.throws(() => planMultipart(ranges, size, type, boundary), { code: 'ERR_INTERNAL' });
    }
    assert.ok(planMultipart(ok, 10, 'video/mp4', 'a'.repeat(70)));
  });

  it('contentLength is the sum of every header, every range and the trailer', () => {
    const rangesArb = fc
      .tuple(
        fc.integer({ min: 1, max: 2 ** 40 }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 30 }),
      )
      .map(([size, pairs]) => ({
        size,
        ranges: pairs.map(([a, b]) => {
          const [lo, hi] = [a % size, b % size].sort((x, y) => x - y) as [number, number];
          return { start: lo, end: hi };
        }),
      }));
    fc.assert(
      fc.property(
        rangesArb,
        fc.constantFrom('video/mp4', 'text/plain; charset=utf-8'),
        ({ size, ranges }, type) => {
          const plan = planMultipart(ranges, size, type);
          const sum =
            plan.parts.reduce((n, p) => n + p.header.length + (p.range.end - p.range.start + 1), 0) +
            plan.trailer.length;
          assert.equal(plan.contentLength, sum);
          for (const p of plan.parts) {
            const text = p.header.toString('latin1');
            assert.ok(text.startsWith(`\r\n--${plan.boundary}\r\n`));
            assert.ok(text.endsWith(`Content-Range: bytes ${p.range.start}-${p.range.end}/${size}\r\n\r\n`));
          }
          assert.equal(plan.trailer.toString('latin1'), `\r\n--${plan.boundary}--\r\n`);
        },
      ),
    );
  });

  it('the assembled body has exactly contentLength bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 8 }),
        (bytes, pairs) => {
          const data = Buffer.from(bytes);
          const ranges = pairs.map(([a, b]) => {
            const [lo, hi] = [a % data.length, b % data.length].sort((x, y) => x - y) as [number, number];
            return { start: lo, end: hi };
          });
          const plan = planMultipart(ranges, data.length, 'application/octet-stream');
          assert.equal(assemble(plan, data).length, plan.contentLength);
        },
      ),
    );
  });
});
