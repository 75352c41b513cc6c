// `routes:` — match conditions and actions.
import { z } from 'zod';
import { HeaderName, HeaderOpsSchema, HeaderValue, oneOrMany, Size } from './common.js';

const StringOrList = oneOrMany(z.string().min(1));

export const MatchSchema = z
  .strictObject({
    host: StringOrList.optional().describe('Host names: exact ("example.com") or one-label wildcards ("*.example.com"). Case-insensitive; port ignored.'),
    path: StringOrList.optional().describe('Path prefixes on segment boundaries: "/api" matches "/api" and "/api/x", not "/apix". Longest wins.'),
    exact_path: StringOrList.optional().describe('Exact paths (no prefix matching).'),
    method: StringOrList.optional().describe('Methods, e.g. ["GET", "HEAD"].'),
    headers: z.record(HeaderName, z.union([z.string(), z.array(z.string())])).optional()
      .describe('Header values that must all be present: a value, a list of accepted values, or "*" for any value.'),
  })
  .prefault({})
  .describe('What a request must look like for this route to take it. Empty matches everything.');

export const RedirectSchema = z.strictObject({
  to: z.string().min(1).describe('Target URL or path; placeholders {scheme} {host} {path} {query} {uri} {rest} are filled in.'),
  status: z.union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)]).default(308)
    .describe('Redirect status.'),
});

export const RespondSchema = z.strictObject({
  status: z.number().int().min(200).max(599).default(200).describe('Status code.'),
  headers: z.record(HeaderName, HeaderValue).default({}).describe('Response headers.'),
  body: z.string().default('').describe('Response body (placeholders are not expanded).'),
});

export const RewriteSchema = z.strictObject({
  regex: z.string().min(1).describe('A regular expression matched against the path (after strip_prefix).'),
  to: z.string().describe('Replacement; $1… refer to capture groups.'),
});

export const RouteSchema = z
  .strictObject({
    name: z.string().min(1).optional().describe('Name used in logs and metrics. Default: "route<index>".'),
    match: MatchSchema,
    upstream: z.string().min(1).optional().describe('Proxy to this named upstream.'),
    redirect: RedirectSchema.optional().describe('Answer with a redirect.'),
    respond: RespondSchema.optional().describe('Answer with a fixed response.'),
    strip_prefix: z.union([z.boolean(), z.string().startsWith('/')]).default(false)
      .describe('Remove the matched path prefix (true) or the given prefix before proxying.'),
    add_prefix: z.string().startsWith('/').optional().describe('Prefix added to the path before proxying (after strip_prefix).'),
    rewrite: RewriteSchema.optional().describe('Regex path rewrite before proxying (after strip_prefix, before add_prefix).'),
    request_headers: HeaderOpsSchema.optional().describe('Changes to the request headers sent upstream.'),
    response_headers: HeaderOpsSchema.optional().describe('Changes to the response headers sent to the client.'),
    max_body_size: Size.optional().describe('Overrides server.limits.max_body_size for this route.'),
  })
  .describe('A route: match conditions and exactly one action (upstream, redirect or respond).');

