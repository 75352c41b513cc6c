// The contract every stage of a route's chain implements: `(ctx, next) => …`. A handler may answer
// itself (ctx.sendHead / ctx.end), change the request (ctx.path, ctx.requestHeaderOps), register a
// response hook, or call `next()` to pass the request on. The chain ends in the route's action.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from '../server/context.js';

export type Next = () => void | Promise<void>;
export type Handler = (ctx: RequestContext, next: Next) => void | Promise<void>;
/** The terminal step of a chain: proxy, redirect or respond. */
export type Action = (ctx: RequestContext) => void | Promise<void>;

/** The response head as it is about to be written; hooks may change it. */
export interface ResponseHead {
  status: number;
  /** Flat [name, value, name, value, …] list, as Node's writeHead accepts it. */
  headers: string[];
}
export type ResponseHook = (head: ResponseHead, ctx: RequestContext) => void;

export type { IncomingMessage, ServerResponse };
