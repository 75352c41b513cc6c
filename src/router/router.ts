// Route selection. The order is fixed at compile time so that a request's route never depends
// on how the config happens to be written, only on how specific each route is:
//   1. host: exact name > "*.wildcard" > no host condition;
//   2. path: exact_path > longest path prefix > no path condition;
//   3. routes with more method/header conditions before routes with fewer;
//   4. config order.
// The first route in that order whose every condition holds takes the request.
import type { IncomingMessage } from 'node:http';

export interface RouteConditions {
  hosts?: string[] | undefined;
  paths?: string[] | undefined;
  exactPaths?: string[] | undefined;
  methods?: string[] | undefined;
  headers?: Record<string, string | string[]> | undefined;
}

export interface RouteMatch<R> {
  route: R;
  /** The path prefix that matched ("" when the route has no prefix condition). */
  prefix: string;
}

const enum PathKind { Exact = 0, Prefix = 1, Any = 2 }

interface Entry<R> {
  route: R;
  index: number;
  hostRank: number; // 0 exact, 1 wildcard, 2 any
  pathKind: PathKind;
  path: string;
  methods: Set<string> | undefined;
  headers: HeaderCondition[] | undefined;
  match: RouteMatch<R>;
}

interface HeaderCondition {
  name: string;
  /** undefined: any value. */
  values: Set<string> | undefined;
}

export class Router<R> {
  readonly #exact = new Map<string, Entry<R>[]>();
  readonly #wildcard = new Map<string, Entry<R>[]>();
  readonly #any: Entry<R>[];

  constructor(routes: readonly { route: R; conditions: RouteConditions }[]) {
    const exact = new Map<string, Entry<R>[]>();
    const wildcard = new Map<string, Entry<R>[]>();
    const any: Entry<R>[] = [];
    routes.forEach(({ route, conditions }, index) => {
      for (const entry of expand(route, index, conditions)) {
        const host = (entry as Entry<R> & { host?: string }).host;
        if (host === undefined) any.push(entry);
        else if (host.startsWith('*.')) push(wildcard, host.slice(2), entry);
        else push(exact, host, entry);
      }
    });
    // Each host's list already contains the less specific routes that also apply to it, in
    // order, so a lookup is one map access and one scan.
    for (const [suffix, list] of wildcard) this.#wildcard.set(suffix, sortEntries([...list, ...any]));
    for (const [host, list] of exact) {
      const dot = host.indexOf('.');
      const wild = dot === -1 ? undefined : wildcard.get(host.slice(dot + 1));
      this.#exact.set(host, sortEntries([...list, ...(wild ?? []), ...any]));
    }
    this.#any = sortEntries(any);
  }

  /** `host` is normalised (lower case, no port); `path` is normalised. */
  match(host: string, path: string, req: IncomingMessage): RouteMatch<R> | undefined {
    const list = this.#exact.get(host) ?? this.#wildcardFor(host) ?? this.#any;
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (e.pathKind === PathKind.Exact) {
        if (path !== e.path) continue;
      } else if (e.pathKind === PathKind.Prefix) {
        if (!prefixMatches(path, e.path)) continue;
      }
      if (e.methods !== undefined && !e.methods.has(req.method!)) continue;
      if (e.headers !== undefined && !headersMatch(e.headers, req)) continue;
      return e.match;
    }
    return undefined;
  }

  #wildcardFor(host: string): Entry<R>[] | undefined {
    const dot = host.indexOf('.');
    return dot === -1 ? undefined : this.#wildcard.get(host.slice(dot + 1));
  }
}

/** "/api" matches "/api", "/api/" and "/api/x", never "/apix". "/" and "/api/" match as written. */
export function prefixMatches(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || prefix.charCodeAt(prefix.length - 1) === 0x2f || path.charCodeAt(prefix.length) === 0x2f;
}

function headersMatch(conditions: HeaderCondition[], req: IncomingMessage): boolean {
  for (const c of conditions) {
    const value = req.headers[c.name];
    if (value === undefined) return false;
    if (c.values === undefined) continue;
    if (Array.isArray(value) ? !value.some((v) => c.values!.has(v)) : !c.values.has(value)) return false;
  }
  return true;
}

function expand<R>(route: R, index: number, c: RouteConditions): (Entry<R> & { host?: string })[] {
  const methods = c.methods?.length ? new Set(c.methods.map((m) => m.toUpperCase())) : undefined;
  const headers = c.headers && Object.keys(c.headers).length
    ? Object.entries(c.headers).map(([name, v]) => {
      const values = Array.isArray(v) ? v : [v];
      return { name: name.toLowerCase(), values: values.includes('*') ? undefined : new Set(values) };
    })
    : undefined;
  const hosts: (string | undefined)[] = c.hosts?.length ? c.hosts.map((h) => h.toLowerCase().replace(/\.$/, '')) : [undefined];
  const paths: [PathKind, string][] = [
    ...(c.exactPaths ?? []).map((p): [PathKind, string] => [PathKind.Exact, p]),
    ...(c.paths ?? []).map((p): [PathKind, string] => [PathKind.Prefix, p]),
  ];
  if (paths.length === 0) paths.push([PathKind.Any, '']);
  const out: (Entry<R> & { host?: string })[] = [];
  for (const host of hosts) {
    for (const [pathKind, path] of paths) {
      const entry: Entry<R> & { host?: string } = {
        route, index, pathKind, path, methods, headers,
        hostRank: host === undefined ? 2 : host.startsWith('*.') ? 1 : 0,
        match: { route, prefix: pathKind === PathKind.Prefix ? path : '' },
      };
      if (host !== undefined) entry.host = host;
      out.push(entry);
    }
  }
  return out;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value); else map.set(key, [value]);
}

function sortEntries<R>(entries: Entry<R>[]): Entry<R>[] {
  return entries.sort((a, b) =>
    a.hostRank - b.hostRank ||
    a.pathKind - b.pathKind ||
    b.path.length - a.path.length ||
    conditionCount(b) - conditionCount(a) ||
    a.index - b.index);
}

function conditionCount(e: Entry<unknown>): number {
  return (e.methods ? 1 : 0) + (e.headers?.length ?? 0);
}
