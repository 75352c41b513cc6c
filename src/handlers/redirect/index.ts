// `redirect: { to, status }`: the target is a template compiled once into literal parts and
// placeholders, so building a Location is a few string appends.
import type { Action } from '../types.js';
import type { RequestContext } from '../../server/context.js';

type Part = string | ((ctx: RequestContext) => string);

const PLACEHOLDERS: Record<string, (ctx: RequestContext) => string> = {
  scheme: (ctx) => ctx.scheme,
  host: (ctx) => ctx.rawHost,
  path: (ctx) => ctx.path,
  query: (ctx) => ctx.query,
  uri: (ctx) => ctx.path + ctx.query,
  rest: (ctx) => {
    const rest = ctx.path.slice(ctx.prefix.length);
    return rest === '' || rest.startsWith('/') ? rest : `/${rest}`;
  },
};

export const REDIRECT_PLACEHOLDERS = Object.keys(PLACEHOLDERS);

/** Splits "https://{host}{uri}" into parts. Throws on an unknown placeholder. */
export function compileTemplate(template: string): Part[] {
  const parts: Part[] = [];
  let last = 0;
  for (const m of template.matchAll(/\{([a-z_]+)\}/g)) {
    const fn = PLACEHOLDERS[m[1]!];
    if (!fn) throw new Error(`unknown placeholder {${m[1]}} (known: ${REDIRECT_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`);
    if (m.index > last) parts.push(template.slice(last, m.index));
    parts.push(fn);
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push(template.slice(last));
  return parts;
}

export function redirectAction(to: string, status: number): Action {
  const parts = compileTemplate(to);
  return (ctx) => {
    let location = '';
    for (const p of parts) location += typeof p === 'string' ? p : p(ctx);
    ctx.respond(status, ['location', location, 'content-type', 'text/plain; charset=utf-8'], '');
  };
}
