import type { Action, Handler } from './types.js';
import type { RequestContext } from '../server/context.js';

/**
 * Composes handlers and the action into one function, once, at compile time. A route with no
 * handlers runs its action directly: a route pays only for the stages it uses.
 */
export function composeChain(handlers: readonly Handler[], action: Action): Action {
  let run: Action = action;
  for (let i = handlers.length - 1; i >= 0; i--) {
    const handler = handlers[i]!;
    const inner = run;
    run = (ctx: RequestContext) => handler(ctx, () => inner(ctx));
  }
  return run;
}
