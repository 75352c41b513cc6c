// `upstreams.<name>:` — targets and how Portico talks to them.
import { z } from 'zod';
import { Duration } from './common.js';

export const TargetSchema = z.union([
  z.string(),
  z.strictObject({
    url: z.string().describe('The target: "http://host:port", "https://host:port" or "unix:/path/to.sock".'),
  }),
]);

export const UpstreamSchema = z
  .strictObject({
    targets: z.array(TargetSchema).min(1).describe('Where requests go: "http://host:port" or "unix:/path/to.sock".'),
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
        connections: z.number().int().min(1).default(128).describe('Most connections to one target.'),
        idle_timeout: Duration.prefault('60s').describe('How long an idle upstream connection is kept for reuse (capped by the target\'s own Keep-Alive hint).'),
      })
      .prefault({})
      .describe('Keep-alive connection pool to each target.'),
  })
  .describe('A named group of targets.');

