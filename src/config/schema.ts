// The config schema: the single source of truth for validation, defaults, the JSON Schema shipped
// for editors (`portico schema`) and docs/configuration.md. Every key carries its description.
// Each top-level section lives in its own file under schema/.
import { z } from 'zod';
import { isIP } from 'node:net';
import { ServerSchema } from './schema/server.js';
import { UpstreamSchema } from './schema/upstream.js';
import { RouteSchema } from './schema/route.js';
import { LogSchema } from './schema/log.js';
import { TlsSchema } from './schema/tls.js';
import type { HeaderOpsSchema } from './schema/common.js';

export { Duration, Size, HeaderOpsSchema } from './schema/common.js';
export { RouteSchema } from './schema/route.js';
export { UpstreamSchema } from './schema/upstream.js';

export const ConfigSchema = z
  .strictObject({
    server: ServerSchema,
    upstreams: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'upstream names use letters, digits, "_", "-" and "."'), UpstreamSchema)
      .default({}).describe('Named groups of backend targets.'),
    routes: z.array(RouteSchema).default([]).describe('Routes, chosen by specificity (see docs/configuration.md#route-order).'),
    log: LogSchema,
    tls: TlsSchema,
  })
  .superRefine((config, ctx) => {
    config.routes.forEach((route, i) => {
      const actions = (['upstream', 'redirect', 'respond'] as const).filter((k) => route[k] !== undefined);
      if (actions.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i],
          message: actions.length === 0
            ? 'a route needs one action: "upstream", "redirect" or "respond"'
            : `a route takes one action, got ${actions.map((a) => `"${a}"`).join(' and ')}`,
        });
      }
      const unknown = unknownUpstream(route.upstream, config.upstreams);
      if (unknown !== undefined) ctx.addIssue({ code: 'custom', path: ['routes', i, 'upstream'], message: unknown });
      if (route.rewrite) {
        try { new RegExp(route.rewrite.regex); } catch (err) {
          ctx.addIssue({ code: 'custom', path: ['routes', i, 'rewrite', 'regex'], message: `invalid regular expression: ${(err as Error).message}` });
        }
      }
      for (const [j, host] of (route.match.host ?? []).entries()) {
        if (!/^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/i.test(host) && isIP(host) === 0) {
          ctx.addIssue({ code: 'custom', path: ['routes', i, 'match', 'host', j], message: 'expected a host name such as "example.com" or "*.example.com"' });
        }
      }
      for (const key of ['path', 'exact_path'] as const) {
        for (const [j, p] of (route.match[key] ?? []).entries()) {
          if (!p.startsWith('/')) ctx.addIssue({ code: 'custom', path: ['routes', i, 'match', key, j], message: 'paths start with "/"' });
        }
      }
      if (route.strip_prefix === true && !route.match.path) {
        ctx.addIssue({ code: 'custom', path: ['routes', i, 'strip_prefix'], message: 'strip_prefix: true needs match.path (or give the prefix to strip)' });
      }
    });
  });

/**
 * The message for a route naming an upstream that does not exist, or undefined. Also used by the
 * loader on the raw document when other errors stop zod before its refinements, so this mistake
 * is reported in the same round as the rest.
 */
export function unknownUpstream(name: unknown, upstreams: unknown): string | undefined {
  if (typeof name !== 'string' || upstreams === null || typeof upstreams !== 'object' || Array.isArray(upstreams)) return undefined;
  if (Object.hasOwn(upstreams, name)) return undefined;
  const known = Object.keys(upstreams);
  return `no upstream named "${name}"${known.length ? ` (known: ${known.join(', ')})` : ' (the "upstreams" section is empty)'}`;
}

/** The config as written (before defaults and unit parsing). */
export type ConfigInput = z.input<typeof ConfigSchema>;
/** The config after validation: defaults filled in, durations in ms, sizes in bytes. */
export type Config = z.output<typeof ConfigSchema>;
export type RouteConfig = z.output<typeof RouteSchema>;
export type ServerConfig = z.output<typeof ServerSchema>;
export type UpstreamConfig = z.output<typeof UpstreamSchema>;
export type HeaderOpsConfig = z.output<typeof HeaderOpsSchema>;
