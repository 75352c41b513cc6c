// The proxy action: path rewriting (strip_prefix, rewrite, add_prefix), then forwarding to the
// route's upstream, or tunnelling for an Upgrade request.
import type { Action } from '../types.js';
import type { RequestContext } from '../../server/context.js';
import type { Upstream } from '../../upstream/upstream.js';
import { forward } from '../../upstream/forward.js';
import { tunnel } from '../../upstream/tunnel.js';

export interface PathRewrite {
  /** true: strip the prefix the route matched; a string: strip that prefix when present. */
  stripPrefix: boolean | string;
  rewrite: { regex: RegExp; to: string } | undefined;
  addPrefix: string | undefined;
}

export function proxyAction(upstream: Upstream, rewrite: PathRewrite, maxBodySize: number): Action {
  const needsRewrite = rewrite.stripPrefix !== false || rewrite.rewrite !== undefined || rewrite.addPrefix !== undefined;
  return (ctx) => {
    if (needsRewrite) ctx.path = rewritePath(ctx, rewrite);
    if (ctx.upgrade !== undefined) tunnel(ctx, upstream, ctx.upgrade);
    else forward(ctx, upstream, maxBodySize);
  };
}

export function rewritePath(ctx: RequestContext, r: PathRewrite): string {
  let path = ctx.path;
  const prefix = r.stripPrefix === true ? ctx.prefix : r.stripPrefix === false ? '' : r.stripPrefix;
  if (prefix !== '' && prefix !== '/' && path.startsWith(prefix)) {
    const end = prefix.endsWith('/') ? prefix.length - 1 : prefix.length;
    if (path.length === end || path.charCodeAt(end) === 0x2f) path = path.slice(end) || '/';
  }
  if (r.rewrite !== undefined) path = path.replace(r.rewrite.regex, r.rewrite.to);
  if (r.addPrefix !== undefined) path = path === '/' ? r.addPrefix : (r.addPrefix.endsWith('/') ? r.addPrefix.slice(0, -1) : r.addPrefix) + path;
  if (!path.startsWith('/')) path = `/${path}`;
  return path;
}
