import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { InfoHash } from '../../src/metainfo/infohash.js';
import { MetainfoCache } from '../../src/storage/metainfo-cache.js';

const IH = '0123456789abcdef0123456789abcdef01234567' as InfoHash;
const OTHER = 'fedcba9876543210fedcba9876543210fedcba98' as InfoHash;
const hasCode = (code: string) => (e: unknown) => (e as { code?: string }).code === code;

const roots: string[] = [];
function tempDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'confluence-metainfo-'));
  roots.push(root);
  return join(root, 'torrents');
}

after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const fileOf = (dir: string, ih: InfoHash) => join(dir, `${ih}.torrent`);
/** The file's inode: every write is a new file renamed into place, so a write changes it. */
const inode = (path: string) => statSync(path).ino;

describe('MetainfoCache', () => {
  it('loads nothing when nothing is cached, even without its directory', async () => {
    const dir = tempDir();
    const c = new MetainfoCache({ dir });
    assert.equal(await c.load(IH), undefined);
    mkdirSync(dir, { recursive: true });
    assert.equal(await c.load(IH), undefined);
  });

  it('saves and loads back the same bytes, per infohash', async () => {
    const dir = tempDir();
    const c = new MetainfoCache({ dir });
    await c.save(IH, Buffer.from('d4:infod4:name1:aee'));
    await c.save(OTHER, Buffer.from('d8:announce3:urle'));
    const fresh = new MetainfoCache({ dir });
    assert.deepEqual(await fresh.load(IH), Buffer.from('d4:infod4:name1:aee'));
    assert.deepEqual(await fresh.load(OTHER), Buffer.from('d8:announce3:urle'));
    assert.deepEqual(readdirSync(dir).sort(), [`${IH}.torrent`, `${OTHER}.torrent`]);
  });

  it('writes only when the bytes changed', async () => {
    const dir = tempDir();
    const c = new MetainfoCache({ dir });
    await c.save(IH, Buffer.from('one'));
    const first = inode(fileOf(dir, IH));
    await c.save(IH, Buffer.from('one'));
    assert.equal(inode(fileOf(dir, IH)), first, 'same bytes: no write');
    await c.save(IH, Buffer.from('two'));
    const second = inode(fileOf(dir, IH));
    assert.notEqual(second, first);
    assert.equal(readFileSync(fileOf(dir, IH), 'latin1'), 'two');

    const other = new MetainfoCache({ dir });
    assert.deepEqual(await other.load(IH), Buffer.from('two'));
    await other.save(IH, Buffer.from('two'));
    assert.equal(inode(fileOf(dir, IH)), second, 'bytes just loaded are not written again');
  });

  it('compares with the bytes saved, not with a buffer the caller changed since', async () => {
    const dir = tempDir();
    const c = new MetainfoCache({ dir });
    const bytes = Buffer.from('first');
    await c.save(IH, bytes);
    bytes.write('later');
    await c.save(IH, bytes);
    assert.equal(readFileSync(fileOf(dir, IH), 'latin1'), 'later');
  });

  it('writes again after forget()', async () => {
    const dir = tempDir();
    const c = new MetainfoCache({ dir });
    await c.save(IH, Buffer.from('same'));
    const first = inode(fileOf(dir, IH));
    c.forget(IH);
    await c.save(IH, Buffer.from('same'));
    assert.notEqual(inode(fileOf(dir, IH)), first);
  });

  it('deletes, after which load finds nothing and save writes again; deleting nothing is fine', async () => {
    const dir = tempDir();
    const c = new MetainfoCache({ dir });
    await c.delete(IH);
    await c.save(IH, Buffer.from('same'));
    await c.save(OTHER, Buffer.from('other'));
    await c.delete(IH);
    assert.equal(await c.load(IH), undefined);
    assert.deepEqual(readdirSync(dir), [`${OTHER}.torrent`]);
    await c.save(IH, Buffer.from('same'));
    assert.deepEqual(readFileSync(fileOf(dir, IH)), Buffer.from('same'), 'not skipped as unchanged');
    const saving = c.save(IH, Buffer.from('late'));
    const deleting = c.delete(IH);
    await Promise.all([saving, deleting]);
    assert.equal(await c.load(IH), undefined, 'operations run in call order');
  });

  it('leaves no temporary files', async () => {
    const dir = tempDir();
    const c = new MetainfoCache({ dir });
    for (let i = 0; i < 20; i++) await c.save(i % 2 ? IH : OTHER, Buffer.from(`bytes ${i}`));
    assert.deepEqual(readdirSync(dir).sort(), [`${IH}.torrent`, `${OTHER}.torrent`]);
  });

  it('concurrent saves end with the last one intact, never a torn file', async () => {
    const dir = tempDir();
    const c = new MetainfoCache({ dir });
    const versions = Array.from({ length: 30 }, (_, i) => Buffer.alloc(1000 + ((i * 7919) % 200_000), i));
    await Promise.all(versions.map((v) => c.save(IH, v)));
    assert.deepEqual(readFileSync(fileOf(dir, IH)), versions.at(-1));
    assert.deepEqual(readdirSync(dir), [`${IH}.torrent`]);
  });

  it('concurrent saves from two caches leave one whole version', async () => {
    const dir = tempDir();
    const a = new MetainfoCache({ dir });
    const b = new MetainfoCache({ dir });
    const va = Buffer.alloc(300_000, 0xaa);
    const vb = Buffer.alloc(200_000, 0xbb);
    await Promise.all([a.save(IH, va), b.save(IH, vb), a.save(IH, vb), b.save(IH, va)]);
    const got = readFileSync(fileOf(dir, IH));
    assert.ok(got.equals(va) || got.equals(vb), `a torn file of ${got.length} bytes`);
    assert.deepEqual(readdirSync(dir), [`${IH}.torrent`]);
  });

  it('a failed save rejects with ERR_STORAGE and leaves no temporary file', async () => {
    const dir = tempDir();
    mkdirSync(join(fileOf(dir, IH), 'blocker'), { recursive: true });
    const c = new MetainfoCache({ dir });
    await assert.rejects(c.save(IH, Buffer.from('x')), hasCode('ERR_STORAGE'));
    assert.deepEqual(readdirSync(dir), [`${IH}.torrent`]);
    await assert.rejects(c.load(IH), hasCode('ERR_STORAGE'));
    rmSync(fileOf(dir, IH), { recursive: true });
    await c.save(IH, Buffer.from('x'));
    assert.equal(readFileSync(fileOf(dir, IH), 'latin1'), 'x', 'a failed save is retried');
  });
});
