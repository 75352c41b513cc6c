// Generates docs/configuration.md from the config schema (src/config/schema.ts), so the reference
// can never drift from what Portico actually accepts. Hand-written prose comes from
// docs/sections/*.md (see docs/sections/README.md for where each fragment lands).
//
//   npm run docs      rewrite docs/configuration.md and schema/portico.schema.json
//   npm run schema    rewrite schema/portico.schema.json only
//   node dist/scripts/gen-docs.js --check   exit 1 if either is out of date
//
// The walk goes over the JSON Schema zod derives for the *input* side (what a user writes), so
// types and defaults read the way they are written in portico.yaml ("10s", not 10000). Durations
// and sizes are both "string or number" in JSON Schema; an override tags them so the reference
// can say "duration" and "size". test/docs.test.ts cross-checks the defaults against what the
// parser actually fills in, in case a default ever stops showing up in the JSON Schema.
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { z } from 'zod';
import { ConfigSchema, Duration, Size } from '../src/config/schema.js';
import { jsonSchema } from '../src/cli/index.js';

export const ROOT = new URL('../../', import.meta.url);
export const DOC_FILE = new URL('docs/configuration.md', ROOT);
export const SCHEMA_FILE = new URL('schema/portico.schema.json', ROOT);
const SECTIONS_DIR = new URL('docs/sections/', ROOT);

/** The subset of JSON Schema that zod emits for our config. */
export interface JsonNode {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonNode>;
  required?: string[];
  additionalProperties?: JsonNode | boolean;
  items?: JsonNode;
  anyOf?: JsonNode[];
  oneOf?: JsonNode[];
  allOf?: JsonNode[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  minLength?: number;
  $ref?: string;
  $defs?: Record<string, JsonNode>;
  'x-portico-kind'?: 'duration' | 'size';
}

/** One documented key. */
export interface KeyDoc {
  /** Dotted path as a user reads it: "server.timeouts.header", "upstreams.<name>.targets", "routes[].match.host". */
  path: string;
  /** The top-level section it belongs to. */
  section: string;
  type: string;
  /** Rendered default, "required", or "—" (unset). */
  default: string;
  /** The raw default from the schema, when there is one. */
  defaultValue?: unknown;
  hasDefault: boolean;
  required: boolean;
  description: string;
  /** True for keys that only group other keys (objects with their own properties). */
  group: boolean;
}

/** The JSON Schema used for the docs: the shipped one plus kind tags on durations and sizes. */
export function docsJsonSchema(): JsonNode {
  return z.toJSONSchema(ConfigSchema, {
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      const target = ctx.jsonSchema as JsonNode;
      if (ctx.zodSchema === Duration) target['x-portico-kind'] = 'duration';
      else if (ctx.zodSchema === Size) target['x-portico-kind'] = 'size';
      // zod leaves some `.default()` values out of the input-side JSON Schema (e.g. on records and
      // arrays at the top level); take them from the schema itself so every default is documented.
      const def = (ctx.zodSchema as { _zod: { def: { type: string; defaultValue?: unknown } } })._zod.def;
      if ((def.type === 'default' || def.type === 'prefault') && target.default === undefined) {
        target.default = JSON.parse(JSON.stringify(def.defaultValue)) as unknown;
      }
    },
  }) as JsonNode;
}

/** Every key in the config, in schema order, depth first. */
export function collectKeys(root: JsonNode = docsJsonSchema()): KeyDoc[] {
  const out: KeyDoc[] = [];
  const resolve = (node: JsonNode): JsonNode => {
    if (node.$ref?.startsWith('#/$defs/')) {
      const target = root.$defs?.[node.$ref.slice('#/$defs/'.length)];
      if (target) return { ...target, ...withoutRef(node) };
    }
    return node;
  };
  const walkObject = (node: JsonNode, prefix: string, section: string | undefined): void => {
    const required = new Set(node.required ?? []);
    for (const [name, raw] of Object.entries(node.properties ?? {})) {
      const child = resolve(raw);
      const path = prefix === '' ? name : `${prefix}.${name}`;
      const sec = section ?? name;
      const hasDefault = child.default !== undefined;
      const group = isObjectNode(child, resolve);
      out.push({
        path,
        section: sec,
        type: typeOf(child, resolve),
        default: renderDefault(child, required.has(name), group),
        ...(hasDefault ? { defaultValue: child.default } : {}),
        hasDefault,
        required: required.has(name),
        description: (child.description ?? '').trim(),
        group,
      });
      descend(child, path, sec);
    }
  };
  // Into whatever holds further keys: objects, maps of objects, lists of objects, unions with an object form.
  const descend = (raw: JsonNode, path: string, section: string): void => {
    const node = resolve(raw);
    if (node.properties) walkObject(node, path, section);
    if (node.additionalProperties && typeof node.additionalProperties === 'object') {
      const value = resolve(node.additionalProperties);
      if (holdsKeys(value, resolve)) {
        const entryPath = `${path}.<name>`;
        out.push({
          path: entryPath, section, type: typeOf(value, resolve), default: '—', hasDefault: false, required: false,
          description: (value.description ?? '').trim(), group: true,
        });
        descend(value, entryPath, section);
      }
    }
    if (node.items) descend(node.items, `${path}[]`, section);
    for (const alt of node.anyOf ?? node.oneOf ?? []) {
      const a = resolve(alt);
      // `x` or `[x]` (one-or-many) and `"string"` or `{ object }` forms share the path.
      if (a.properties) walkObject(a, path, section);
      else if (a.items) descend(a.items, `${path}[]`, section);
    }
  };
  walkObject(resolve(root), '', undefined);
  // A key reachable through two union members (e.g. a list item that is a string or an object) is listed once.
  const seen = new Set<string>();
  return out.filter((k) => (seen.has(k.path) ? false : (seen.add(k.path), true)));
}

function withoutRef(node: JsonNode): JsonNode {
  const { $ref: _ref, ...rest } = node;
  return rest;
}

function isObjectNode(node: JsonNode, resolve: (n: JsonNode) => JsonNode): boolean {
  const n = resolve(node);
  return n.properties !== undefined && Object.keys(n.properties).length > 0;
}

function holdsKeys(node: JsonNode, resolve: (n: JsonNode) => JsonNode): boolean {
  const n = resolve(node);
  return isObjectNode(n, resolve) || (n.anyOf ?? n.oneOf ?? []).some((a) => isObjectNode(a, resolve));
}

/** A short human type: "duration", "list of strings", "`json` or `combined`", "integer ≥ 0". */
export function typeOf(raw: JsonNode, resolve: (n: JsonNode) => JsonNode = (n) => n, plural = false): string {
  const node = resolve(raw);
  const s = (word: string) => (plural ? `${word}s` : word);
  if (node['x-portico-kind']) return s(node['x-portico-kind']);
  if (node.const !== undefined) return code(node.const);
  if (node.enum) return node.enum.length === 1 ? code(node.enum[0]) : `one of ${node.enum.map(code).join(', ')}`;
  const alts = node.anyOf ?? node.oneOf;
  if (alts) {
    if (alts.every((a) => resolve(a).const !== undefined)) return `one of ${alts.map((a) => code(resolve(a).const)).join(', ')}`;
    // One-or-many: `x` or a list of `x`.
    if (alts.length === 2) {
      const [a, b] = alts.map(resolve) as [JsonNode, JsonNode];
      if (b.items && sameShape(a, resolve(b.items))) return `${typeOf(a, resolve, plural)} or list of ${typeOf(a, resolve, true)}`;
    }
    return alts.map((a) => typeOf(a, resolve, plural)).join(' or ');
  }
  const types = Array.isArray(node.type) ? node.type : node.type ? [node.type] : [];
  if (types.length > 1) return types.map((t) => typeOf({ ...node, type: t }, resolve, plural)).join(' or ');
  switch (types[0]) {
    case 'array':
      return node.items ? `list of ${typeOf(node.items, resolve, true)}` : s('list');
    case 'object':
      if (node.properties && Object.keys(node.properties).length > 0) return s('object');
      if (node.additionalProperties && typeof node.additionalProperties === 'object') {
        const value = typeOf(node.additionalProperties, resolve, true);
        return `map of names to ${value.includes(' or ') ? `(${value})` : value}`;
      }
      return s('object');
    case 'integer':
    case 'number': {
      const word = s(types[0]);
      const min = node.minimum ?? node.exclusiveMinimum;
      const max = node.maximum !== undefined && node.maximum < Number.MAX_SAFE_INTEGER ? node.maximum : undefined;
      if (min !== undefined && max !== undefined) return `${word} ${min}–${max}`;
      if (min !== undefined) return `${word} ${node.exclusiveMinimum !== undefined ? '>' : '≥'} ${min}`;
      if (max !== undefined) return `${word} ≤ ${max}`;
      return word;
    }
    case 'string':
    case 'boolean':
      return s(types[0]);
    default:
      return 'any';
  }
}

function sameShape(a: JsonNode, b: JsonNode): boolean {
  return JSON.stringify({ ...a, description: undefined, default: undefined }) === JSON.stringify({ ...b, description: undefined, default: undefined });
}

function renderDefault(node: JsonNode, required: boolean, group: boolean): string {
  if (node.default !== undefined) {
    // `{}` on a group only means "the keys below take their defaults".
    if (group && isEmptyObject(node.default)) return '(see keys below)';
    return code(node.default);
  }
  return required ? 'required' : '—';
}

function isEmptyObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

/** A value as it would be written in YAML, in backticks. */
function code(v: unknown): string {
  const text = typeof v === 'string' ? (v === '' || /^[\s]|[\s]$|^[-?:,[\]{}#&*!|>'"%@`]|: | #/.test(v) ? JSON.stringify(v) : v)
    : JSON.stringify(v).replace(/,/g, ', ');
  return `\`${text}\``;
}

/** GitHub's heading anchor for a heading text. */
export function anchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

interface Fragment { name: string; text: string }

function readFragments(): Fragment[] {
  if (!existsSync(SECTIONS_DIR)) return [];
  return readdirSync(SECTIONS_DIR)
    .filter((f) => f.endsWith('.md') && f !== 'README.md')
    .sort()
    .map((f) => ({ name: f.slice(0, -3), text: readFileSync(new URL(f, SECTIONS_DIR), 'utf8').trim() }));
}

/** The whole of docs/configuration.md. */
export function renderConfigurationDoc(): string {
  const root = docsJsonSchema();
  const keys = collectKeys(root);
  const sections = Object.keys(root.properties ?? {});
  const fragments = readFragments();
  const byName = new Map(fragments.map((f) => [f.name, f.text]));
  const topics = fragments.filter((f) => f.name !== 'intro' && !sections.includes(f.name));

  const lines: string[] = [];
  lines.push('<!-- Generated by scripts/gen-docs.ts from the config schema (src/config/schema*) and docs/sections/*.md.');
  lines.push('     Do not edit by hand: change the schema descriptions or the fragments, then run `npm run docs`. -->');
  lines.push('');
  lines.push('# Configuration reference');
  lines.push('');
  const intro = byName.get('intro');
  if (intro) lines.push(intro, '');

  lines.push('## Contents', '');
  for (const s of sections) lines.push(`- [\`${s}\`](#${anchor(s)}) — ${firstSentence(root.properties![s]!.description ?? '')}`);
  for (const t of topics) {
    const title = headingOf(t.text);
    if (title) lines.push(`- [${title}](#${anchor(title)})`);
  }
  lines.push('');

  for (const s of sections) {
    const node = root.properties![s]!;
    lines.push(`## ${s}`, '');
    if (node.description) lines.push(node.description.trim(), '');
    const top = keys.find((k) => k.path === s);
    if (top) lines.push(`**Type:** ${top.type} · **Default:** ${top.default}`, '');
    const fragment = byName.get(s);
    if (fragment) lines.push(fragment, '');
    const own = keys.filter((k) => k.section === s);
    lines.push('| Key | Type | Default |', '|---|---|---|');
    for (const k of own) if (k.path !== s) lines.push(`| [\`${k.path}\`](#${anchor(k.path)}) | ${cell(k.type)} | ${cell(k.default)} |`);
    lines.push('');
    for (const k of own) {
      if (k.path === s) continue; // the section heading above is this key's entry
      lines.push(`### ${k.path}`, '');
      lines.push(`**Type:** ${k.type} · **Default:** ${k.default}`, '');
      if (k.description) lines.push(k.description, '');
    }
  }

  for (const t of topics) lines.push(t.text, '');
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd() + '\n';
}

function firstSentence(text: string): string {
  const m = /^(.*?[.!?])(\s|$)/.exec(text.trim());
  return m ? m[1]! : text.trim();
}

function headingOf(text: string): string | undefined {
  return /^##\s+(.+)$/m.exec(text)?.[1]?.trim();
}

/** The whole of schema/portico.schema.json: exactly what `portico schema` prints. */
export function renderJsonSchema(): string {
  return JSON.stringify(jsonSchema(), null, 2) + '\n';
}

// `node dist/scripts/gen-docs.js [--schema] [--check]`
if (import.meta.url === `file://${process.argv[1]}`) {
  const outputs: [URL, string, () => string][] = [[SCHEMA_FILE, 'schema/portico.schema.json', renderJsonSchema]];
  if (!process.argv.includes('--schema')) outputs.unshift([DOC_FILE, 'docs/configuration.md', renderConfigurationDoc]);
  for (const [file, name, render] of outputs) {
    const text = render();
    if (process.argv.includes('--check')) {
      const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
      if (current !== text) {
        console.error(`${name} is out of date: run \`npm run docs\``);
        process.exitCode = 1;
      } else {
        console.log(`${name} is up to date`);
      }
    } else {
      // Written whole, after rendering succeeded: a failed run never leaves a truncated file.
      writeFileSync(file, text);
      console.log(`wrote ${name}`);
    }
  }
}
