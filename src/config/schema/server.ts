// `server:` — client-facing listeners, limits and timeouts.
import { z } from 'zod';
import { Cidr, Duration, HeaderName, ListenAddress, Size } from './common.js';
import { HttpsSchema } from './https.js';

export const ServerSchema = z
  .strictObject({
    listen: z.array(ListenAddress).min(1).default(['127.0.0.1:8080'])
      .describe('Addresses for plain HTTP: "host:port", ":port" (all interfaces), "[::1]:port" or "unix:/path".'),
    https: HttpsSchema,
    trusted_proxies: z.array(Cidr).default([])
      .describe('Peers (IPs or CIDR ranges) whose X-Forwarded-*, X-Real-IP and Forwarded headers are believed. Others have them replaced.'),
    timeouts: z
      .strictObject({
        header: Duration.prefault('10s').describe('Time a client has to send the whole request head (slowloris guard). 408 after it.'),
        keepalive: Duration.prefault('75s').describe('How long an idle keep-alive client connection is kept open.'),
        client_idle: Duration.prefault('60s').describe('Longest silence on a client connection while a request or response is in flight.'),
        shutdown: Duration.prefault('30s').describe('Grace period for in-flight requests on SIGTERM/SIGINT before connections are closed.'),
      })
      .prefault({})
      .describe('Client-side timeouts.'),
    limits: z
      .strictObject({
        max_connections: z.number().int().min(0).default(10_000).describe('Client connections accepted at once per listener; more are closed at once. 0: unlimited.'),
        max_header_size: Size.prefault('16kb').describe('Largest request head (request line and headers). Larger heads get 431.'),
        max_body_size: Size.prefault('100mb').describe('Largest request body; larger bodies get 413. 0: unlimited. A route may override it.'),
        max_requests_per_connection: z.number().int().min(0).default(0).describe('Requests served on one keep-alive connection before it is closed. 0: unlimited.'),
      })
      .prefault({})
      .describe('Client-side limits.'),
    headers: z
      .strictObject({
        via: z.boolean().default(false).describe('Add "Via: 1.1 portico" to requests and responses (RFC 9110 §7.6.3).'),
        forwarded: z.boolean().default(false).describe('Also send an RFC 7239 Forwarded header (for, proto, host) upstream.'),
        hide: z.array(HeaderName).default(['server', 'x-powered-by'])
          .describe('Response headers from upstreams that are removed before the response reaches the client.'),
        request_id: z.union([z.literal(false), HeaderName]).default('x-request-id')
          .describe('Header carrying a request id, generated when absent (or untrusted) and passed upstream and back; false disables.'),
      })
      .prefault({})
      .describe('Proxy header behaviour.'),
    paths: z
      .strictObject({
        merge_slashes: z.boolean().default(true).describe('Collapse "//" into "/" before matching and forwarding (as nginx does).'),
        encoded_slashes: z.enum(['decode', 'reject', 'keep']).default('decode')
          .describe('What %2F and %5C in a path mean: "decode" them to "/" before normalising (safe default), "reject" the request with 400, or "keep" them as data.'),
      })
      .prefault({})
      .describe('Request path normalisation, done before routing.'),
  })
  .prefault({})
  .describe('Client-facing listeners and their limits.');

