// Reading a YAML config: parse, validate with the schema, and report every problem with the
// file, line and key path that is wrong.
import { readFile } from 'node:fs/promises';
import { isMap, isSeq, isScalar, isPair, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { ConfigSchema, unknownUpstream, type Config, type ConfigInput } from './schema.js';
import { ConfigError, formatKeyPath, type ConfigProblem } from './errors.js';

export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file, key: '', message: `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  return parseConfigText(text, file);
}

/** Parses and validates YAML text. `file` is only used in error messages. */
export function parseConfigText(text: string, file = '<config>'): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return { file, line: pos.line, column: pos.col, key: '', message: `YAML syntax: ${e.message.split('\n')[0]}` };
    }));
  }
  const raw: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  const result = ConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(issuesToProblems(withCrossReferences(result.error.issues, raw), file, (path) => {
    const offset = locate(doc.contents, path);
    if (offset === undefined) return undefined;
    return lineCounter.linePos(offset);
  }));
}

/** Validates an object config (the programmatic API). Errors name the key path. */
export function validateConfigObject(input: ConfigInput | unknown, file = '<object>'): Config {
  const result = ConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  throw new ConfigError(issuesToProblems(withCrossReferences(result.error.issues, input), file, () => undefined));
}

/**
 * zod runs the config-wide refinements only once every section has the right shape; add the
 * unknown-upstream check on the raw document so that mistake is not held back for a second round.
 */
function withCrossReferences(issues: z.core.$ZodIssue[], raw: unknown): z.core.$ZodIssue[] {
  const doc = raw as { routes?: unknown; upstreams?: unknown } | null;
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.routes)) return issues;
  const reported = new Set(issues.map((i) => i.path.join('.')));
  const extra: z.core.$ZodIssue[] = [];
  doc.routes.forEach((route: unknown, i) => {
    const message = unknownUpstream((route as { upstream?: unknown } | null)?.upstream, doc.upstreams ?? {});
    const path = ['routes', i, 'upstream'];
    if (message !== undefined && !reported.has(path.join('.'))) extra.push({ code: 'custom', path, message, input: undefined } as z.core.$ZodIssue);
  });
  return extra.length === 0 ? issues : [...issues, ...extra];
}

type Locate = (path: PropertyKey[]) => { line: number; col: number } | undefined;

function issuesToProblems(issues: z.core.$ZodIssue[], file: string, locateFn: Locate): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of flattenIssues(issues)) {
    const paths = issue.code === 'unrecognized_keys'
      ? issue.keys.map((k) => [...issue.path, k])
      : [issue.path];
    for (const path of paths) {
      const pos = locateFn(path);
      problems.push({
        file,
        line: pos?.line,
        column: pos?.col,
        key: formatKeyPath(path),
        message: describeIssue(issue, path),
      });
    }
  }
  return problems;
}

/** A union failing reports each branch; the most useful message is the deepest one. */
function flattenIssues(issues: z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const out: z.core.$ZodIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Prefer the branch that got furthest (the longest path), e.g. an object with a bad key
      // over "expected string".
      const branches = issue.errors
        .map((branch) => branch.map((i) => ({ ...i, path: [...issue.path, ...i.path] }) as z.core.$ZodIssue))
        .sort((a, b) => depth(b) - depth(a));
      const best = branches[0]!;
      if (depth(best) > issue.path.length) { out.push(...flattenIssues(best)); continue; }
    }
    out.push(issue);
  }
  return out;
}

function depth(branch: z.core.$ZodIssue[]): number {
  return Math.max(0, ...branch.map((i) => i.path.length + (i.code === 'invalid_type' ? 0 : 0.5)));
}

function describeIssue(issue: z.core.$ZodIssue, path: PropertyKey[]): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return `unknown key "${String(path[path.length - 1])}"`;
    case 'invalid_type':
      return issue.message.includes('received undefined') ? `required: ${issue.message.replace(/^Invalid input: /, '')}` : issue.message.replace(/^Invalid input: /, '');
    case 'invalid_union':
      return 'value does not have any of the accepted forms';
    default:
      return issue.message.replace(/^Invalid input: /, '');
  }
}

/** Finds the source offset of the node at `path`: the key for map entries, else the value. */
function locate(root: unknown, path: PropertyKey[]): number | undefined {
  let node = root as YamlNode | null;
  let best: number | undefined = rangeStart(node);
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(part));
      if (!pair) return best;
      best = rangeStart(pair.key as YamlNode) ?? best;
      node = pair.value as YamlNode | null;
    } else if (isSeq(node) && typeof part === 'number') {
      const item = node.items[part] as YamlNode | undefined;
      if (!item) return best;
      best = rangeStart(item) ?? best;
      node = item;
    } else {
      return best;
    }
  }
  return best;
}

function rangeStart(node: YamlNode | null | undefined): number | undefined {
  return node && 'range' in node && node.range ? node.range[0] : undefined;
}
