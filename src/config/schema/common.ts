// Building blocks shared by the config sections.
import { z } from 'zod';
import { isIP } from 'node:net';
import { parseDuration, parseSize } from '../units.js';

/** A duration: "10s", "500ms", "1h30m", or a number of milliseconds. "0"/"off" disables. */
export const Duration = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a duration such as "10s", "500ms" or "1h30m", got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return ms;
  });

/** A size: "10mb", "512kb", "1gb" (binary multiples), or a number of bytes. "0"/"unlimited" disables. */
export const Size = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a size such as "10mb", "512kb" or a number of bytes, got ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return bytes;
  });

export const oneOrMany = <T extends z.ZodType>(item: T) =>
  z.union([item, z.array(item)]).transform((v): z.output<T>[] => (Array.isArray(v) ? v : [v]));

export const Cidr = z.string().refine((s) => {
  if (s === 'unix') return true;
  const [addr, bits, extra] = s.split('/');
  if (extra !== undefined || !addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return Number.isInteger(n) && n >= 0 && n <= (family === 4 ? 32 : 128);
}, { message: 'expected an IP address, a CIDR range such as "10.0.0.0/8", or "unix" (Unix-socket peers)' });

export const ListenAddress = z.string().refine((s) => /^(unix:\/.+|(\[[0-9a-fA-F:.]+\]|[^:[\]]*):\d{1,5})$/.test(s), {
  message: 'expected "host:port", ":port", "[::1]:port" or "unix:/path/to.sock"',
});

export const HeaderName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected an HTTP header name');
export const HeaderValue = z.string().refine((s) => !/[\r\n\0]/.test(s), 'header values cannot contain CR, LF or NUL');

export const HeaderOpsSchema = z
  .strictObject({
    set: z.record(HeaderName, HeaderValue).default({}).describe('Headers to set, replacing any value already there.'),
    add: z.record(HeaderName, HeaderValue).default({}).describe('Headers to append, keeping values already there.'),
    remove: z.array(HeaderName).default([]).describe('Header names to remove.'),
  })
  .describe('Header changes: remove, then set, then add.');

