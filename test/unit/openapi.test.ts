/**
 * The OpenAPI document's structure, checked without a validator package: the rules of OpenAPI 3.1
 * that a hand-written document most easily breaks (references, path templates, operation ids,
 * response codes), and its version against package.json.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { OPENAPI_DOCUMENT, SERVICE_VERSION } from '../../src/http/openapi.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const doc = JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)) as JsonObject;

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function field(v: Json | undefined, key: string): Json | undefined {
  return isObject(v) ? v[key] : undefined;
}

/** Follows a local reference (`#/a/b~1c`); undefined when it leads nowhere. */
function resolvePointer(ref: string): Json | undefined {
  if (!ref.startsWith('#/')) return undefined;
  let at: Json | undefined = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    at = field(at, key);
    if (at === undefined) return undefined;
  }
  return at;
}

function deref(v: Json | undefined): Json | undefined {
  const ref = field(v, '$ref');
  return typeof ref === 'string' ? resolvePointer(ref) : v;
}

/** Every `$ref` in the document, with where it sits. */
function refs(v: Json, at: string, out: { at: string; ref: Json }[] = []): { at: string; ref: Json }[] {
  if (Array.isArray(v)) for (const [i, x] of v.entries()) refs(x, `${at}/${i}`, out);
  else if (isObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref') out.push({ at, ref: x });
      else refs(x, `${at}/${k}`, out);
    }
  }
  return out;
}

function operations(): { path: string; method: string; op: JsonObject; item: JsonObject }[] {
  const out: { path: string; method: string; op: JsonObject; item: JsonObject }[] = [];
  for (const [path, item] of Object.entries(doc.paths as JsonObject)) {
    assert.ok(isObject(item), `${path} is a path item`);
    for (const method of METHODS) {
      const op = item[method];
      if (op !== undefined) {
        assert.ok(isObject(op), `${method} ${path} is an object`);
        out.push({ path, method, op, item });
      }
    }
  }
  return out;
}

function parametersOf(item: JsonObject, op: JsonObject): JsonObject[] {
  const list = [...((item.parameters as Json[] | undefined) ?? []), ...((op.parameters as Json[]) ?? [])];
  return list.map((p) => {
    const resolved = deref(p);
    assert.ok(isObject(resolved), `parameter ${JSON.stringify(p)} resolves to an object`);
    return resolved;
  });
}

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 with an info block whose version is package.json’s', () => {
    assert.match(String(doc.openapi), /^3\.1\.\d+$/);
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8'));
    assert.equal(SERVICE_VERSION, pkg.version);
    assert.equal(field(doc.info, 'version'), pkg.version);
    assert.equal(field(doc.info, 'title'), 'confluence-ts');
  });

  it('has paths that start with / and operations that each have responses', () => {
    const paths = Object.keys(doc.paths as JsonObject);
    assert.ok(paths.length > 0);
    for (const p of paths) assert.ok(p.startsWith('/'), `${p} starts with /`);
    const ops = operations();
    assert.ok(ops.length >= paths.length, 'every path has an operation');
    for (const { path, method, op } of ops) {
      const rs = op.responses;
      assert.ok(isObject(rs) && Object.keys(rs).length > 0, `${method} ${path} has responses`);
      for (const [code, r] of Object.entries(rs)) {
        assert.match(code, /^(?:[1-5](?:\d\d|XX)|default)$/, `${method} ${path}: response code ${code}`);
        assert.equal(
          typeof field(deref(r), 'description'),
          'string',
          `${method} ${path} ${code} has a description`,
        );
      }
    }
  });

  it('resolves every $ref inside the document', () => {
    const all = refs(doc, '#');
    assert.ok(all.length > 50, 'the document uses its components');
    for (const { at, ref } of all) {
      assert.equal(typeof ref, 'string', `$ref at ${at} is a string`);
      assert.notEqual(resolvePointer(ref as string), undefined, `$ref ${String(ref)} at ${at} resolves`);
    }
  });

  it('declares every path template parameter as a required path parameter, and no others', () => {
    for (const { path, method, op, item } of operations()) {
      const templated = [...path.matchAll(/\{([^}/]+)\}/g)].map((m) => m[1]!).sort();
      const params = parametersOf(item, op);
      const declared = params.filter((p) => p.in === 'path');
      assert.deepEqual(declared.map((p) => p.name).sort(), templated, `${method} ${path}: path parameters`);
      for (const p of declared)
        assert.equal(p.required, true, `${method} ${path}: ${String(p.name)} is required`);
      const keys = params.map((p) => `${String(p.in)}:${String(p.name)}`);
      assert.equal(new Set(keys).size, keys.length, `${method} ${path}: parameters are unique`);
      for (const p of params) {
        assert.ok(['query', 'header', 'path', 'cookie'].includes(String(p.in)), `${String(p.name)}: in`);
        assert.ok(isObject(p.schema), `${method} ${path}: ${String(p.name)} has a schema`);
      }
    }
  });

  it('has no two templated paths that only differ in parameter names', () => {
    const shapes = Object.keys(doc.paths as JsonObject).map((p) => p.replace(/\{[^}]+\}/g, '{}'));
    assert.equal(new Set(shapes).size, shapes.length);
  });

  it('has unique operation ids, declared tags and security schemes', () => {
    const ids = operations().map(({ op }) => op.operationId);
    assert.ok(ids.every((id) => typeof id === 'string' && id !== ''));
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    const tags = new Set((doc.tags as JsonObject[]).map((t) => t.name));
    const schemes = Object.keys(field(doc.components, 'securitySchemes') as JsonObject);
    const requirements = [...(doc.security as JsonObject[])];
    for (const { path, method, op } of operations()) {
      const opTags = op.tags as Json[];
      assert.ok(opTags.length > 0, `${method} ${path} has a tag`);
      for (const t of opTags) assert.ok(tags.has(t), `${method} ${path}: tag ${String(t)} is declared`);
      requirements.push(...((op.security as JsonObject[] | undefined) ?? []));
    }
    for (const r of requirements)
      for (const name of Object.keys(r)) assert.ok(schemes.includes(name), `security scheme ${name} exists`);
  });

  it('lists only declared properties as required in object schemas', () => {
    const check = (v: Json, at: string): void => {
      if (Array.isArray(v)) for (const [i, x] of v.entries()) check(x, `${at}/${i}`);
      else if (isObject(v)) {
        if (Array.isArray(v.required) && isObject(v.properties)) {
          for (const k of v.required) assert.ok(String(k) in v.properties, `${at}: required ${String(k)}`);
        }
        for (const [k, x] of Object.entries(v)) check(x, `${at}/${k}`);
      }
    };
    check(field(doc.components, 'schemas') as Json, '#/components/schemas');
  });
});
