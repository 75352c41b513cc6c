// `tls.acme` — automatic certificates from an ACME CA (RFC 8555), and `tls.internal` — the local
// development CA. Wired into the `tls:` section by src/config/schema/tls.ts.
import { z } from 'zod';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { Duration } from './common.js';

export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

const HostName = z.string().refine(
  (s) => /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(s) && isIP(s) === 0,
  { message: 'expected a DNS name such as "example.com" (ACME here issues for names, not IP addresses or wildcards)' },
);

/** A readable PEM file with at least one certificate (checked now, so `portico validate` catches it). */
const CaBundleFile = z.string().min(1).superRefine((p, ctx) => {
  let text: string;
  try { text = readFileSync(p, 'utf8'); } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    ctx.addIssue({ code: 'custom', message: code === 'ENOENT' ? 'file not found' : `cannot read the file: ${code ?? 'error'}` });
    return;
  }
  try { new X509Certificate(text); } catch {
    ctx.addIssue({ code: 'custom', message: 'expected a PEM file of CA certificates ("-----BEGIN CERTIFICATE-----")' });
  }
});

export const AcmeSchema = z
  .strictObject({
    email: z.email({ message: 'expected an email address' }).optional()
      .describe('Contact address given to the CA for expiry and account notices. Optional, recommended.'),
    directory: z.url({ protocol: /^https?$/, message: 'expected the URL of an ACME directory' }).default(LETS_ENCRYPT_DIRECTORY)
      .describe('The ACME directory URL. Default: Let\'s Encrypt production. Any RFC 8555 CA works (ZeroSSL, Google, step-ca, a private CA).'),
    storage: z.string().min(1).optional()
      .describe('Directory for the account key and certificates (files 0600, directories 0700). Default: $XDG_DATA_HOME/portico/acme (~/.local/share/portico/acme).'),
    domains: z.array(HostName).optional()
      .describe('Names to obtain certificates for. Default: every host named in routes that no configured certificate covers.'),
    eab: z
      .strictObject({
        kid: z.string().min(1).describe('Key identifier the CA gave you.'),
        hmac_key: z.string().regex(/^[A-Za-z0-9_-]+=*$/, 'expected the base64url HMAC key the CA gave you').describe('The base64url HMAC key the CA gave you.'),
      })
      .optional()
      .describe('External account binding (RFC 8555 §7.3.4), required by ZeroSSL-style CAs.'),
    ca_bundle: CaBundleFile.optional()
      .describe('PEM file of CA certificates to trust for the directory\'s HTTPS (a private CA). NODE_EXTRA_CA_CERTS works too.'),
    challenges: z.array(z.enum(['http-01', 'tls-alpn-01'])).min(1).default(['http-01', 'tls-alpn-01'])
      .describe('Challenge types Portico may answer, in order of preference. http-01 needs port 80 reachable, tls-alpn-01 port 443.'),
    key_type: z.enum(['ecdsa', 'rsa']).default('ecdsa')
      .describe('Certificate key: "ecdsa" (P-256, faster handshakes) or "rsa" (2048 bits, for very old clients).'),
    retry: z
      .strictObject({
        min: Duration.prefault('1m').describe('First wait after a failed order; doubled after each failure.'),
        max: Duration.prefault('1h').describe('Longest wait between attempts.'),
      })
      .prefault({})
      .describe('Backoff for failed orders and renewals. The current certificate keeps serving meanwhile.'),
  })
  .superRefine((acme, ctx) => {
    if (acme.retry.min <= 0) ctx.addIssue({ code: 'custom', path: ['retry', 'min'], message: 'must be more than 0' });
    if (acme.retry.max < acme.retry.min) ctx.addIssue({ code: 'custom', path: ['retry', 'max'], message: 'must be at least retry.min' });
  })
  .describe('Automatic certificates from an ACME CA. Renewed when a third of their lifetime is left.');

export const InternalCaSchema = z
  .union([
    z.boolean(),
    z.strictObject({
      names: z.array(z.string().refine((s) => isIP(s) !== 0 || /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$/i.test(s), 'expected a host name or IP address')).default([])
        .describe('Names on top of localhost, 127.0.0.1 and ::1.'),
      storage: z.string().min(1).optional()
        .describe('Directory of the CA (ca.pem, ca.key 0600). Default: $XDG_DATA_HOME/portico/ca.'),
      lifetime: Duration.prefault('7d').describe('Lifetime of issued certificates; renewed when a third is left.'),
    }),
  ])
  .default(false)
  .transform((v) => (typeof v === 'boolean'
    ? { enabled: v, names: [] as string[], storage: undefined as string | undefined, lifetime: 7 * 86_400_000 }
    : { enabled: true, ...v }))
  .describe('Local development certificates from Portico\'s own CA: true, or { names, storage, lifetime }.');

export type AcmeConfig = z.output<typeof AcmeSchema>;
export type InternalCaConfig = z.output<typeof InternalCaSchema>;
