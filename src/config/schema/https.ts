// `server.https:` — HTTPS listeners (HTTP/1.1 and HTTP/2 over TLS), redirect from HTTP, HSTS.
import { z } from 'zod';
import { ListenAddress, Duration } from './common.js';

export const HstsSchema = z
  .strictObject({
    // A bare number is seconds here (as in the header itself and nginx's configs), unlike other durations.
    max_age: z.union([z.number().int().min(0), Duration.transform((ms) => Math.floor(ms / 1000))]).default(31_536_000)
      .describe('How long browsers remember to use HTTPS only: seconds (31536000) or a duration ("365d"). 0 tells them to forget.'),
    include_subdomains: z.boolean().default(false).describe('Apply to every subdomain as well. Turn on only when all of them serve HTTPS.'),
    preload: z.boolean().default(false).describe('Ask to be in browsers\' preload lists (hstspreload.org also requires max_age >= 1 year and include_subdomains).'),
  });

export const SecurityHeadersSchema = z
  .strictObject({
    content_type_options: z.boolean().default(true).describe('"X-Content-Type-Options: nosniff".'),
    frame_options: z.union([z.enum(['DENY', 'SAMEORIGIN']), z.literal(false)]).default('SAMEORIGIN').describe('"X-Frame-Options"; false leaves it out.'),
    referrer_policy: z.union([z.string().regex(/^[a-z-]+(,\s*[a-z-]+)*$/, 'expected a Referrer-Policy value such as "strict-origin-when-cross-origin"'), z.literal(false)])
      .default('strict-origin-when-cross-origin').describe('"Referrer-Policy"; false leaves it out.'),
  });

export const HttpsSchema = z
  .strictObject({
    listen: z.array(ListenAddress).default([])
      .describe('Addresses for HTTPS (TLS with ALPN h2 and http/1.1), e.g. [":443"]. Needs a certificate (tls.certificates, tls.acme or tls.internal).'),
    http2: z.boolean().default(true).describe('Offer HTTP/2 via ALPN. Upstreams are spoken to over HTTP/1.1 (or HTTP/2 where upstreams.<name>.tls.http2 says so).'),
    redirect_http: z.union([z.boolean(), z.number().int().min(1).max(65535)]).default(false)
      .describe('Answer plain-HTTP requests for hosts named by routes or with a certificate of their own with 308 to the same URL over HTTPS (path and query kept), except /.well-known/acme-challenge/. true: to the port of the first HTTPS listener; a number: to that port (when a port mapping in front changes it, e.g. 443 outside, 8443 inside).'),
    hsts: z.union([HstsSchema, z.literal(false)]).default(false)
      .describe('Strict-Transport-Security on HTTPS responses, e.g. { max_age: 1y, include_subdomains: true }. false: not sent.'),
    security_headers: z.union([SecurityHeadersSchema, z.boolean()]).default(false)
      .describe('Common protective headers on HTTPS responses: true for the defaults (nosniff, X-Frame-Options SAMEORIGIN, Referrer-Policy strict-origin-when-cross-origin), or an object to choose.'),
    h2c_listen: z.array(ListenAddress).default([])
      .describe('Addresses for cleartext HTTP/2 with prior knowledge (h2c), for a trusted load balancer in front. HTTP/2 only: plain HTTP/1.1 clients use server.listen.'),
  })
  .prefault({})
  .describe('HTTPS listeners and the HTTP-to-HTTPS policy.');

export type HttpsConfig = z.output<typeof HttpsSchema>;
