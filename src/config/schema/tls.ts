// `tls:` — certificates Portico serves and the TLS policy of its HTTPS listeners.
// Certificate files are read and checked here, during validation, so `portico validate` and a
// reload refuse a missing file, a bad PEM or a key that does not match its certificate, with the
// config line of the offending key. Error messages never quote key material.
import { z } from 'zod';
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { Duration } from './common.js';
import { AcmeSchema, InternalCaSchema } from './acme.js';

const TlsVersion = z.enum(['1.2', '1.3']);

export const CertificateFileSchema = z
  .strictObject({
    cert: z.string().min(1).describe('PEM file with the certificate chain, leaf first (as issued: "fullchain.pem").'),
    key: z.string().min(1).describe('PEM file with the private key (RSA, ECDSA or Ed25519). Keep it readable by Portico\'s user only.'),
    names: z.array(z.string().regex(/^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$|^[0-9a-f:.]+$/i, 'expected a host name ("example.com"), a one-label wildcard ("*.example.com") or an IP address')).min(1).optional()
      .describe('Host names this certificate is served for ("*.example.com" for one label). Default: the certificate\'s subjectAltName entries.'),
    default: z.boolean().default(false)
      .describe('Serve this certificate to clients that send no SNI name (or a name nothing covers). Default: the first certificate listed.'),
  })
  .superRefine((entry, ctx) => {
    let certPem: Buffer;
    let keyPem: Buffer;
    try { certPem = readFileSync(entry.cert); } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['cert'], message: `cannot read "${entry.cert}": ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
      return;
    }
    try { keyPem = readFileSync(entry.key); } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['key'], message: `cannot read "${entry.key}": ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
      return;
    }
    let cert: X509Certificate;
    try { cert = new X509Certificate(certPem); } catch {
      ctx.addIssue({ code: 'custom', path: ['cert'], message: `"${entry.cert}" holds no PEM certificate` });
      return;
    }
    let ok = false;
    try { ok = cert.checkPrivateKey(createPrivateKey(keyPem)); } catch {
      // The parser's message may quote the input: say only what is wrong.
      ctx.addIssue({ code: 'custom', path: ['key'], message: `"${entry.key}" holds no usable PEM private key (encrypted keys are not supported)` });
      return;
    }
    if (!ok) ctx.addIssue({ code: 'custom', path: ['key'], message: `"${entry.key}" does not match the certificate in "${entry.cert}"` });
  });

export const TlsSchema = z
  .strictObject({
    certificates: z.array(CertificateFileSchema).default([])
      .describe('Certificates from PEM files, chosen per connection by SNI: exact name, then wildcard, then the default. Re-read on reload (SIGHUP).'),
    min_version: TlsVersion.default('1.2')
      .describe('Oldest TLS version accepted: "1.2" (default; every browser of the last decade) or "1.3" (stricter). Older versions are never offered.'),
    ciphers: z.string().min(1).optional()
      .describe('TLS 1.2 cipher list in OpenSSL syntax, replacing the default (ECDHE with AES-GCM or ChaCha20-Poly1305 only). Setting this is the explicit way to widen (or narrow) the policy; TLS 1.3 suites are always the standard AEAD ones.'),
    curves: z.string().min(1).default('X25519:prime256v1:secp384r1')
      .describe('Key-exchange groups in preference order (OpenSSL names, ":"-separated).'),
    session_tickets: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Offer session resumption with tickets (TLS 1.2 and 1.3).'),
        rotate: Duration.prefault('6h').describe('How often the ticket encryption key is replaced by a fresh random one. Tickets sealed with the old key then need a full handshake: a shorter period limits what a stolen key could decrypt.'),
      })
      .prefault({})
      .describe('TLS session resumption. Keys are random, held in memory only, shared by every HTTPS listener.'),
    watch: z.boolean().default(false)
      .describe('Watch certificate and key files and load them when they change (as well as on SIGHUP).'),
    acme: AcmeSchema.optional(),
    internal: InternalCaSchema,
  })
  .prefault({})
  .describe('Certificates and the TLS policy of the HTTPS listeners.');

export type TlsConfig = z.output<typeof TlsSchema>;

/** `upstreams.<name>.tls:` — how Portico verifies `https://` targets. */
export const UpstreamTlsSchema = z
  .strictObject({
    ca: z.string().min(1).optional()
      .describe('PEM file with the CA certificate(s) that sign the targets\' certificates (a private CA). Default: the system\'s public CAs (plus NODE_EXTRA_CA_CERTS).'),
    servername: z.string().min(1).optional()
      .describe('Name sent as SNI and checked against the target\'s certificate, when it differs from the target address (e.g. targets given by IP).'),
    http2: z.boolean().default(false)
      .describe('Offer HTTP/2 to https:// targets (ALPN); targets that do not pick it get HTTP/1.1. WebSocket upgrades always use HTTP/1.1.'),
    insecure_skip_verify: z.boolean().default(false)
      .describe('Accept any certificate from the targets. Anyone on the path can then read and change the traffic: for tests only. Logged as a warning at every start and reload.'),
  })
  .superRefine((t, ctx) => {
    if (t.ca === undefined) return;
    let pem: string;
    try { pem = readFileSync(t.ca, 'utf8'); } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['ca'], message: `cannot read "${t.ca}": ${(err as NodeJS.ErrnoException).code ?? 'error'}` });
      return;
    }
    try { new X509Certificate(pem); } catch {
      ctx.addIssue({ code: 'custom', path: ['ca'], message: `"${t.ca}" holds no PEM certificate` });
    }
  })
  .describe('TLS toward https:// targets: verification is on unless turned off here.');

export type UpstreamTlsConfig = z.output<typeof UpstreamTlsSchema>;
