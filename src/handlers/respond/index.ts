// `respond: { status, headers, body }`: a fixed answer, prepared once.
import type { Action } from '../types.js';

export function respondAction(status: number, headers: Record<string, string>, body: string): Action {
  const head: string[] = [];
  let hasType = false;
  for (const [name, value] of Object.entries(headers)) {
    head.push(name, value);
    if (name.toLowerCase() === 'content-type') hasType = true;
  }
  if (!hasType && body !== '') head.push('content-type', 'text/plain; charset=utf-8');
  const payload = Buffer.from(body);
  return (ctx) => ctx.respond(status, head.slice(), payload);
}
