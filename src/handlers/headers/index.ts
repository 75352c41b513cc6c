// Per-route header changes: `request_headers` and `response_headers` ({ set, add, remove }).
// Compiled once into a set of names to drop and a flat list to append, so applying them is one
// pass over headers that are being copied anyway.
import type { HeaderOpsConfig } from '../../config/schema.js';
import type { Handler, ResponseHead } from '../types.js';

export interface CompiledHeaderOps {
  /** Lower-case names removed from the incoming list (remove ∪ set). */
  drop: Set<string>;
  /** Flat [name, value, …] appended after filtering (set, then add). */
  append: string[];
}

export function compileHeaderOps(ops: HeaderOpsConfig): CompiledHeaderOps {
  const drop = new Set<string>();
  for (const name of ops.remove) drop.add(name.toLowerCase());
  const append: string[] = [];
  for (const [name, value] of Object.entries(ops.set)) { drop.add(name.toLowerCase()); append.push(name, value); }
  for (const [name, value] of Object.entries(ops.add)) append.push(name, value);
  return { drop, append };
}

/** Applies ops to a flat header list, in place when nothing is removed. */
export function applyHeaderOps(headers: string[], ops: CompiledHeaderOps): string[] {
  let out = headers;
  if (ops.drop.size > 0) {
    out = [];
    for (let i = 0; i < headers.length; i += 2) {
      if (!ops.drop.has(headers[i]!.toLowerCase())) out.push(headers[i]!, headers[i + 1]!);
    }
  }
  for (let i = 0; i < ops.append.length; i++) out.push(ops.append[i]!);
  return out;
}

/**
 * The handler: request changes are handed to whichever action builds the upstream request;
 * response changes run as a hook just before the response head is written, whoever writes it
 * (upstream response, fixed response, redirect or error page).
 */
export function headersHandler(request: CompiledHeaderOps | undefined, response: CompiledHeaderOps | undefined): Handler {
  const hook = response ? (head: ResponseHead) => { head.headers = applyHeaderOps(head.headers, response); } : undefined;
  return (ctx, next) => {
    if (request) ctx.requestHeaderOps = request;
    if (hook) ctx.addResponseHook(hook);
    return next();
  };
}
