// Config errors name the file, the line and the key path, and say what was expected; the JSON
// Schema for editors comes from the same schema.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfigFile, parseConfigText, type ConfigProblem } from '../src/index.js';
import { jsonSchema } from '../src/cli/index.js';

const dir = mkdtempSync(join(tmpdir(), 'portico-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const VALID = `server:
  listen: ["127.0.0.1:8080"]
  trusted_proxies: []
upstreams:
  api:
    targets: ["http://127.0.0.1:8000", "unix:/run/api.sock"]
routes:
  - name: api
    match: { host: "example.com", path: "/api" }
    strip_prefix: true
    upstream: api
  - match: { path: "/old" }
    redirect: { to: "/new", status: 308 }
  - match: { path: "/healthz" }
    respond: { status: 200, body: "ok" }
log:
  access: { format: json, path: stdout }
`;

/** The problems a config text produces (it must be refused). */
function problemsOf(text: string, file = 'portico.yaml'): ConfigProblem[] {
  try {
    parseConfigText(text, file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    assert.ok(err.problems.length > 0);
    return err.problems;
  }
  assert.fail('the config was accepted');
}

/** Exactly one problem, at `line`, on `key`, whose message matches `message`; the formatted error says all of it. */
function assertProblem(text: string, line: number, key: string, message: RegExp): void {
  const problems = problemsOf(text);
  const p = problems.find((x) => x.key === key);
  assert.ok(p, `a problem on ${key}; got ${JSON.stringify(problems)}`);
  assert.equal(p.file, 'portico.yaml');
  assert.equal(p.line, line, `line of ${key}`);
  assert.match(p.message, message);
  let formatted = '';
  try { parseConfigText(text, 'portico.yaml'); } catch (err) { formatted = (err as Error).message; }
  assert.match(formatted, new RegExp(`^portico\\.yaml:${line}(:\\d+)?: ${key.replace(/[.[\]]/g, '\\$&')}: `, 'm'));
}

test('the example config from the issue is valid, with defaults and units filled in', () => {
  const config = parseConfigText(VALID, 'portico.yaml');
  assert.equal(config.routes.length, 3);
  assert.equal(config.server.timeouts.header, 10_000);
  assert.equal(config.server.limits.max_body_size, 100 * 1024 * 1024);
  assert.equal(config.upstreams.api!.timeouts.connect, 5_000);
});

test('durations and sizes are human-readable', () => {
  const config = parseConfigText(`server:
  timeouts: { header: 500ms, keepalive: 1m30s }
  limits: { max_body_size: 10mb, max_header_size: 512kb }
`);
  assert.equal(config.server.timeouts.header, 500);
  assert.equal(config.server.timeouts.keepalive, 90_000);
  assert.equal(config.server.limits.max_body_size, 10 * 1024 * 1024);
  assert.equal(config.server.limits.max_header_size, 512 * 1024);
});

test('unknown key: file, line and key path', () => {
  assertProblem(`server:
  listen: ["127.0.0.1:8080"]
  timeouts:
    header: 10s
    kepalive: 5s
`, 5, 'server.timeouts.kepalive', /unknown key "kepalive"/);
});

test('wrong type', () => {
  assertProblem(`server:
  limits:
    max_connections: "lots"
`, 3, 'server.limits.max_connections', /expected number/i);
});

test('bad duration: "10 parsecs"', () => {
  assertProblem(`upstreams:
  api:
    targets: ["http://127.0.0.1:8000"]
    timeouts:
      response: 10 parsecs
`, 5, 'upstreams.api.timeouts.response', /expected a duration such as "10s".*"10 parsecs"/);
});

test('bad size', () => {
  assertProblem(`server:
  limits:
    max_body_size: huge
`, 3, 'server.limits.max_body_size', /expected a size/);
});

test('a route naming a missing upstream', () => {
  assertProblem(`upstreams:
  api:
    targets: ["http://127.0.0.1:8000"]
routes:
  - match: { path: "/" }
    upstream: apii
`, 6, 'routes[0].upstream', /no upstream named "apii" \(known: api\)/);
});

test('two actions on one route', () => {
  assertProblem(`upstreams:
  api:
    targets: ["http://127.0.0.1:8000"]
routes:
  - match: { path: "/a" }
    upstream: api
  - match: { path: "/b" }
    upstream: api
    respond: { body: "x" }
`, 7, 'routes[1]', /one action, got "upstream" and "respond"/);
});

test('a route without an action', () => {
  assertProblem(`routes:
  - match: { path: "/b" }
`, 2, 'routes[0]', /needs one action/);
});

test('invalid YAML syntax: file and line', () => {
  const problems = problemsOf(`server:
  listen: ["127.0.0.1:8080"
  trusted_proxies: []
`);
  assert.equal(problems[0]!.file, 'portico.yaml');
  assert.equal(typeof problems[0]!.line, 'number');
  assert.ok(problems[0]!.line! >= 2 && problems[0]!.line! <= 4, `line ${problems[0]!.line}`);
  assert.match(problems[0]!.message, /YAML syntax/);
});

test('a duplicate key is a YAML error', () => {
  const problems = problemsOf(`server:
  listen: ["127.0.0.1:8080"]
server:
  listen: ["127.0.0.1:8081"]
`);
  assert.match(problems[0]!.message, /YAML syntax/);
  assert.equal(problems[0]!.line, 3);
});

test('every problem in the structure is reported, not just the first', () => {
  const problems = problemsOf(`server:
  bogus: 1
  timeouts: { header: soon }
  limits: { max_body_size: lots }
`);
  const keys = problems.map((p) => p.key).sort();
  assert.deepEqual(keys, ['server.bogus', 'server.limits.max_body_size', 'server.timeouts.header']);
  for (const p of problems) assert.equal(typeof p.line, 'number', `${p.key} has a line`);
  // Cross-checks between sections (route -> upstream names, paths starting with "/") are
  // reported together once the structure itself is valid (zod runs refinements after it).
  const cross = problemsOf(`routes:
  - match: { path: "nope" }
    upstream: missing
`);
  assert.deepEqual(cross.map((p) => p.key).sort(), ['routes[0].match.path[0]', 'routes[0].upstream']);
});

test('a missing upstream is reported in the same round as shape errors elsewhere, with its line', () => {
  const problems = problemsOf(`server:
  timeouts: { header: soon }
upstreams:
  api:
    targets: ["http://127.0.0.1:8000"]
routes:
  - match: { path: "/" }
    upstream: apii
`);
  const keys = problems.map((p) => p.key).sort();
  assert.deepEqual(keys, ['routes[0].upstream', 'server.timeouts.header']);
  const missing = problems.find((p) => p.key === 'routes[0].upstream')!;
  assert.equal(missing.line, 8);
  assert.match(missing.message, /no upstream named "apii" \(known: api\)/);
});

test('loadConfigFile: errors name the real file; a missing file is a clear error', async () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(file, 'server:\n  listen: [8080]\n');
  await assert.rejects(loadConfigFile(file), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.problems[0]!.file, file);
    assert.equal(err.problems[0]!.line, 2);
    assert.match(err.message, new RegExp(`^${file.replace(/[.]/g, '\\.')}:2:\\d+: server\\.listen\\[0\\]: `));
    return true;
  });
  await assert.rejects(loadConfigFile(join(dir, 'absent.yaml')), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /absent\.yaml.*cannot read the file: ENOENT/);
    return true;
  });
  const good = join(dir, 'good.yaml');
  writeFileSync(good, VALID);
  assert.equal((await loadConfigFile(good)).routes.length, 3);
});

test('the JSON Schema is produced from the same schema, with descriptions and defaults', () => {
  const schema = jsonSchema() as {
    title?: string; type?: string; additionalProperties?: unknown;
    properties?: Record<string, { properties?: Record<string, { description?: string; properties?: Record<string, { default?: unknown }> }> }>;
  };
  assert.equal(schema.type, 'object');
  assert.equal(schema.title, 'portico.yaml');
  assert.equal(schema.additionalProperties, false, 'unknown keys are flagged in editors too');
  for (const key of ['server', 'upstreams', 'routes', 'log']) assert.ok(schema.properties?.[key], key);
  const server = schema.properties!.server!;
  assert.match(server.properties!.trusted_proxies!.description ?? '', /trusted|X-Forwarded/i);
  assert.equal(server.properties!.timeouts!.properties!.header!.default, '10s', 'defaults in human units');
  assert.doesNotThrow(() => JSON.stringify(schema));
});
