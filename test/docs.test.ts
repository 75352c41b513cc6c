// docs/configuration.md and schema/portico.schema.json are generated from the config schema;
// these tests fail when either has drifted from it (fix: `npm run docs`), and check that the
// reference really documents every key and every default the parser fills in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { anchor, collectKeys, docsJsonSchema, renderConfigurationDoc, renderJsonSchema, DOC_FILE, SCHEMA_FILE, type JsonNode } from '../scripts/gen-docs.js';
import { jsonSchema } from '../src/cli/index.js';
import { ConfigSchema } from '../src/config/schema.js';

const doc = readFileSync(DOC_FILE, 'utf8');

/** "line N: expected … got …" for the first line that differs, so a failure says where. */
function firstDifference(actual: string, expected: string): string {
  const a = actual.split('\n');
  const e = expected.split('\n');
  for (let i = 0; i < Math.max(a.length, e.length); i++) {
    if (a[i] !== e[i]) return `first difference at line ${i + 1}:\n  file:      ${JSON.stringify(a[i] ?? '<end>')}\n  generated: ${JSON.stringify(e[i] ?? '<end>')}`;
  }
  return 'no difference';
}

test('docs/configuration.md is what the generator produces (run `npm run docs`)', () => {
  const expected = renderConfigurationDoc();
  assert.ok(doc === expected, `docs/configuration.md is out of date: run \`npm run docs\` and commit the result; ${firstDifference(doc, expected)}`);
});

test('schema/portico.schema.json is what `portico schema` prints (run `npm run docs`)', () => {
  const shipped = readFileSync(SCHEMA_FILE, 'utf8');
  const expected = renderJsonSchema();
  assert.ok(shipped === expected, `schema/portico.schema.json is out of date: run \`npm run docs\` (or \`npm run schema\`) and commit the result; ${firstDifference(shipped, expected)}`);
  assert.deepEqual(JSON.parse(shipped), JSON.parse(JSON.stringify(jsonSchema())));
});

/** Every key path in the shipped JSON Schema, walked independently of the generator. */
function shippedKeyPaths(root: JsonNode): string[] {
  const out: string[] = [];
  const visit = (node: JsonNode, path: string): void => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const p = path === '' ? name : `${path}.${name}`;
      out.push(p);
      visit(child, p);
    }
    if (node.additionalProperties && typeof node.additionalProperties === 'object') {
      const value = node.additionalProperties;
      if (value.properties || (value.anyOf ?? []).some((a) => a.properties)) visit(value, `${path}.<name>`);
    }
    if (node.items) visit(node.items, `${path}[]`);
    for (const alt of node.anyOf ?? node.oneOf ?? []) {
      if (alt.properties) visit(alt, path);
      else if (alt.items) visit(alt.items, `${path}[]`);
    }
  };
  visit(root, '');
  return [...new Set(out)];
}

test('every key of the schema has its own entry in docs/configuration.md', () => {
  const paths = shippedKeyPaths(jsonSchema() as JsonNode);
  assert.ok(paths.length > 40, `expected many keys, found ${paths.length}`);
  const headings = new Set([...doc.matchAll(/^#{2,3} (\S+)$/gm)].map((m) => m[1]));
  const missing = paths.filter((p) => !headings.has(p));
  assert.deepEqual(missing, [], 'keys without an entry in docs/configuration.md');
});

test('every key has a description in the schema (.describe() where it is defined)', () => {
  const undescribed = collectKeys().filter((k) => k.description === '').map((k) => k.path);
  assert.deepEqual(undescribed, [], 'add .describe() to these keys in src/config/schema/*.ts');
});

/** Leaf paths (in docs notation) of a parsed config, with their values. */
function leaves(value: unknown, path: string, out: Map<string, unknown>): Map<string, unknown> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) leaves(v, path === '' ? k : `${path}.${k}`, out);
  } else {
    out.set(path, value);
  }
  return out;
}

test('every default the parser fills in is documented as a default', () => {
  // The smallest configs that reach every section: an upstream and a route of each action.
  const parsed = ConfigSchema.parse({
    upstreams: { u: { targets: ['http://127.0.0.1:1'] } },
    routes: [
      { match: { path: '/a' }, upstream: 'u', request_headers: {}, response_headers: {} },
      { redirect: { to: '/b' } },
      { respond: {} },
    ],
  });
  const given = new Set(['upstreams.<name>.targets', 'routes[].match.path', 'routes[].upstream', 'routes[].redirect.to']);
  const found = new Map<string, unknown>();
  const { routes, upstreams, ...rest } = parsed;
  leaves(rest, '', found);
  for (const route of routes) leaves(route, 'routes[]', found);
  for (const up of Object.values(upstreams)) leaves(up, 'upstreams.<name>', found);
  const documented = new Map(collectKeys().map((k) => [k.path, k]));
  const undocumented: string[] = [];
  for (const [path, value] of found) {
    // Unset optional keys, and keys a transform derives that nobody writes (e.g. tls.internal.enabled
    // from `internal: true`), have no default to show; that every written key is documented is
    // checked above.
    if (given.has(path) || value === undefined || !documented.has(path)) continue;
    if (!documented.get(path)!.hasDefault) undocumented.push(path);
  }
  assert.deepEqual(undocumented, [], 'defaults the parser applies but the reference does not show');
});

test('documented defaults are what the parser applies', () => {
  // Writing a key's documented default must give the same value as leaving the key out.
  let compared = 0;
  for (const key of collectKeys()) {
    if (!key.hasDefault || key.group || key.path.includes('<name>') || key.path.includes('[]')) continue;
    const parts = key.path.split('.');
    const build = (leaf: boolean): Record<string, unknown> => {
      const root: Record<string, unknown> = {};
      let cursor = root;
      for (const part of parts.slice(0, -1)) cursor = (cursor[part] = {}) as Record<string, unknown>;
      if (leaf) cursor[parts.at(-1)!] = key.defaultValue;
      return root;
    };
    const implicit = ConfigSchema.safeParse(build(false));
    // A key under a section that cannot be empty (it needs other keys) is checked by that section's tests.
    if (!implicit.success) continue;
    const explicit = ConfigSchema.safeParse(build(true));
    assert.ok(explicit.success, `${key.path}: documented default ${key.default} does not validate`);
    const pick = (v: unknown) => parts.reduce((o, p) => (o as Record<string, unknown> | undefined)?.[p], v);
    assert.deepEqual(pick(explicit.data), pick(implicit.data), `${key.path}: documented default ${key.default} differs from the applied one`);
    compared++;
  }
  assert.ok(compared > 20, `compared only ${compared} defaults`);
});

test('durations and sizes are named as such', () => {
  const keys = new Map(collectKeys(docsJsonSchema()).map((k) => [k.path, k.type]));
  assert.equal(keys.get('server.timeouts.header'), 'duration');
  assert.equal(keys.get('server.limits.max_body_size'), 'size');
});

// --- the YAML shown in the docs is real config -------------------------------------------------

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

function yamlBlocks(file: string): { line: number; text: string }[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const blocks: { line: number; text: string }[] = [];
  // ```yaml blocks only: ```yaml fragment (or any other info string) is a deliberate partial snippet.
  for (const m of text.matchAll(/^```yaml[ \t]*\n([\s\S]*?)^```/gm)) {
    blocks.push({ line: text.slice(0, m.index).split('\n').length, text: m[1]! });
  }
  return blocks;
}

test('every ```yaml block in README.md and docs/ is a valid config (portico validate)', async () => {
  const files = ['README.md', 'docs/operations.md', 'docs/configuration.md',
    ...readdirSync(join(ROOT, 'docs/sections')).filter((f) => f.endsWith('.md')).map((f) => `docs/sections/${f}`)];
  const dir = mkdtempSync(join(tmpdir(), 'portico-docs-'));
  const failures: string[] = [];
  const seen = new Set<string>();
  let checked = 0;
  try {
    for (const file of files) {
      for (const block of yamlBlocks(file)) {
        if (seen.has(block.text)) continue; // fragments reappear in docs/configuration.md
        seen.add(block.text);
        const path = join(dir, `block${checked++}.yaml`);
        writeFileSync(path, block.text);
        await run(process.execPath, ['bin/portico.js', 'validate', '--config', path], { cwd: ROOT }).catch((err: { stderr: string }) => {
          failures.push(`${file}:${block.line}: ${err.stderr.trim().replaceAll(path, 'block')}`);
        });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(failures, [], 'YAML examples in the docs that portico validate refuses (mark partial snippets ```yaml fragment)');
  assert.ok(checked >= 5, `checked only ${checked} blocks`);
});

test('README keeps the two commands CI and newcomers rely on', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  assert.match(readme, /^ {4}npm ci && npm test$/m);
  assert.match(readme, /^ {4}npm ci && npm run demo$/m);
  const ci = readFileSync(join(ROOT, '.ci/run'), 'utf8');
  assert.match(ci, /^npm ci && npm test$/m, '.ci/run runs the README test command');
});

test('relative links in README.md and docs/*.md point at files and headings that exist', () => {
  const broken: string[] = [];
  const anchorsOf = new Map<string, Set<string>>();
  const anchors = (path: string): Set<string> => {
    let set = anchorsOf.get(path);
    if (!set) {
      set = new Set([...readFileSync(path, 'utf8').matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1]!)));
      anchorsOf.set(path, set);
    }
    return set;
  };
  for (const file of ['README.md', 'docs/operations.md', 'docs/configuration.md', 'docs/architecture.md']) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/\]\(([^)#\s]*)(?:#([^)\s]*))?\)/g)) {
      const [, target = '', fragment] = m;
      if (/^[a-z]+:/.test(target)) continue;
      const resolved = target === '' ? join(ROOT, file) : join(ROOT, file, '..', target);
      try { readFileSync(resolved); } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EISDIR') broken.push(`${file}: ${target}`);
        continue;
      }
      if (fragment && resolved.endsWith('.md') && !anchors(resolved).has(fragment)) broken.push(`${file}: ${target}#${fragment}`);
    }
  }
  assert.deepEqual(broken, []);
});
