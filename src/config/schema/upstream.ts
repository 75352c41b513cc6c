// `upstreams.<name>:` — targets, how one is chosen, health, retries, limits, and how Portico
// talks to them.
import { z } from 'zod';
import { Duration, HeaderName, HeaderValue, Size } from './common.js';
import { UpstreamTlsSchema } from './tls.js';

export const TargetSchema = z.union([
  z.string(),
  z.strictObject({
    url: z.string().describe('The target: "http://host:port", "https://host:port" or "unix:/path/to.sock".'),
    weight: z.number().int().min(1).max(1000).default(1)
      .describe('Relative share of requests (round_robin, least_requests, random_two; hash rings give it more points).'),
    backup: z.boolean().default(false)
      .describe('Used only when no other (non-backup) target is healthy.'),
    drain: z.boolean().default(false)
      .describe('Gets no new requests; requests and WebSockets in flight finish. Set it, reload, then remove the target.'),
  }),
]);

const POLICIES = ['round_robin', 'least_requests', 'random_two', 'ip_hash', 'first'] as const;

export const BalanceSchema = z.union([
  z.enum(POLICIES),
  z.strictObject({
    hash: z.string().regex(/^(uri|(header|cookie|query):.+)$/, 'expected "header:<name>", "cookie:<name>", "query:<name>" or "uri"')
      .describe('Consistent hashing on "header:<name>", "cookie:<name>", "query:<name>" or "uri"; requests without the key are spread at random.'),
  }),
]);

/** "20%" or a number of percent. Output: a fraction (0.2). */
const Percent = z.union([z.string().regex(/^\d+(\.\d+)?%$/, 'expected a percentage such as "20%"'), z.number().min(0).max(100)])
  .transform((v) => (typeof v === 'number' ? v : Number(v.slice(0, -1))) / 100)
  .refine((f) => f >= 0 && f <= 1, 'a percentage is between 0% and 100%');

/** "200-399", 200, or a list of codes. Output: [min, max]. */
const StatusRange = z.union([
  z.number().int().min(100).max(599).transform((n): [number, number] => [n, n]),
  z.string().regex(/^\d{3}(-\d{3})?$/, 'expected a status code or range such as "200-399"')
    .transform((s): [number, number] => { const [a, b] = s.split('-'); return [Number(a), Number(b ?? a)]; }),
]);

const FailureOn = z.union([z.enum(['connect', 'reset', 'timeout']), z.number().int().min(500).max(599)]);

export const ActiveHealthSchema = z.strictObject({
  path: z.string().startsWith('/').default('/').describe('Path requested with GET (HTTP checks).'),
  tcp: z.boolean().default(false).describe('Only open a TCP connection (no HTTP request); success is the connect.'),
  interval: Duration.prefault('5s').describe('Time between two checks of one target.'),
  timeout: Duration.prefault('2s').describe('A check taking longer fails.'),
  rise: z.number().int().min(1).default(2).describe('Successful checks in a row that bring an unhealthy target back.'),
  fall: z.number().int().min(1).default(2).describe('Failed checks in a row that take a target out of rotation.'),
  status: StatusRange.prefault('200-399').describe('Status codes that pass: a code, or a range such as "200-399".'),
  body: z.string().min(1).optional().describe('Text the response body must contain (the first 64 KiB are searched).'),
  host: z.string().min(1).optional().describe('Host header of the check. Default: the target\'s address.'),
  headers: z.record(HeaderName, HeaderValue).default({}).describe('Extra request headers of the check.'),
}).describe('Active health checks: each target is probed every interval, whatever the traffic.');

export const PassiveHealthSchema = z.strictObject({
  failures: z.number().int().min(0).default(3)
    .describe('Failed requests in a row (no success between) that take a target out for the cool-down. 0 disables. Ignored when the upstream has one target.'),
  cooldown: Duration.prefault('10s').describe('How long a failing target stays out of rotation before it gets traffic again.'),
  on: z.array(FailureOn).default(['connect', 'reset', 'timeout', 502, 503, 504])
    .describe('What counts as a failure: "connect" (no connection), "reset" (connection broke), "timeout", and response status codes 500-599.'),
}).describe('Passive health: failures of real requests take a target out for a cool-down.');

export const RetriesSchema = z.strictObject({
  attempts: z.number().int().min(1).max(10).default(3)
    .describe('Attempts in total, the first one included; each retry goes to a target not tried yet. 1 disables retries.'),
  on: z.array(FailureOn).default(['connect', 'reset', 'timeout', 502, 503, 504])
    .describe('Failures that are retried. "connect" is retried for every method (nothing was sent); the others only for idempotent methods unless non_idempotent is set.'),
  budget: Percent.prefault('20%')
    .describe('Retries may be at most this share of requests (plus a reserve of 10 that refills with traffic), so a brown-out does not become a retry storm.'),
  try_timeout: Duration.optional().describe('Limit for one attempt, to the response head. Default: timeouts.response.'),
  deadline: Duration.prefault('0').describe('Limit for all attempts of a request together; no retry starts after it. 0: none.'),
  non_idempotent: z.boolean().default(false)
    .describe('Also retry POST, PATCH (and other non-idempotent methods) after a reset, timeout or retryable status. Only when the application tolerates duplicates.'),
  buffer_body: Size.prefault('0')
    .describe('Request bodies up to this size (with a Content-Length) are read whole before sending, so a retry can replay them. 0: bodies are streamed and not replayed.'),
}).describe('Retrying a failed attempt on another target.');

export const StickySchema = z.strictObject({
  cookie: z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a cookie name').default('portico_srv')
    .describe('Name of the cookie naming the target (its value is an opaque signed token).'),
  key: z.string().min(16).optional()
    .describe('Secret that signs the cookie (at least 16 characters). Default: random per process, so cookies do not survive a restart or work across several Portico instances.'),
  max_age: Duration.prefault('0').describe('Cookie lifetime; 0 makes it a session cookie.'),
  same_site: z.enum(['Lax', 'Strict', 'None']).default('Lax').describe('SameSite attribute.'),
  secure: z.union([z.boolean(), z.literal('auto')]).default('auto').describe('Secure attribute; "auto": when the request came over HTTPS.'),
}).describe('Sticky sessions: a client keeps going to the target it was first sent to while that target is in rotation.');

export const UpstreamSchema = z
  .strictObject({
    tls: UpstreamTlsSchema.optional(),
    targets: z.array(TargetSchema).min(1).describe('Where requests go: "http://host:port", "unix:/path/to.sock", or { url, weight, backup, drain }.'),
    balance: BalanceSchema.default('round_robin')
      .describe('How a target is chosen: round_robin (smooth weighted), least_requests, random_two, ip_hash, first, or { hash: "header:<name>" | "cookie:<name>" | "query:<name>" | "uri" }.'),
    sticky: StickySchema.optional(),
    health: z.strictObject({
      active: ActiveHealthSchema.optional(),
      passive: PassiveHealthSchema.prefault({}),
    }).prefault({}).describe('Health checking: active probes and passive failure counting.'),
    retries: RetriesSchema.prefault({}),
    slow_start: Duration.prefault('0').describe('A target coming back into rotation gets its weight ramped from 10% to 100% over this time. 0: at once.'),
    limits: z.strictObject({
      max_connections: z.number().int().min(1).optional().describe('Most connections to one target. Default: keepalive.connections.'),
      max_pending: z.number().int().min(0).default(1024)
        .describe('Most requests waiting for a connection to one target; beyond it (and when every target is full) Portico answers 503 with Retry-After.'),
    }).prefault({}).describe('Overload protection per target.'),
    host: z.union([z.literal('preserve'), z.literal('target'), z.string().min(1)]).default('preserve')
      .describe('Host header sent upstream: "preserve" the client\'s, use the "target" address, or a fixed value.'),
    timeouts: z
      .strictObject({
        connect: Duration.prefault('5s').describe('Time to open a connection to a target. 502 after it.'),
        response: Duration.prefault('60s').describe('Time from sending the request to receiving the response head. 504 after it.'),
        read: Duration.prefault('60s').describe('Longest silence between two pieces of a response body. 0 disables (long polls, SSE).'),
        websocket_idle: Duration.prefault('1h').describe('An upgraded connection (WebSocket) with no traffic either way for this long is closed.'),
      })
      .prefault({})
      .describe('Upstream timeouts.'),
    keepalive: z
      .strictObject({
        connections: z.number().int().min(1).default(128).describe('Most connections to one target (limits.max_connections overrides it).'),
        idle_timeout: Duration.prefault('60s').describe('How long an idle upstream connection is kept for reuse (capped by the target\'s own Keep-Alive hint).'),
      })
      .prefault({})
      .describe('Keep-alive connection pool to each target.'),
  })
  .describe('A named group of targets.');
