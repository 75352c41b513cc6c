// What the bench measures: a list of scenarios (one table section each) and the ratios checked
// against the targets of the issues. A new row is a new entry here; proxies decide in
// bench/proxies.ts whether they can serve a scenario (and say why not).
import { LARGE_BYTES, SMALL_BODY } from './nginx.js';

export interface Scenario {
  id: string;
  title: string;
  /** Path requested through the proxy; the backend answers /small with a short text, /1m with 1 MiB. */
  path: '/small' | '/1m';
  /** Body length the sanity check expects before measuring. */
  expectBytes: number;
  /** How many backend targets the proxy balances over (all served by the same backend nginx). */
  targets: 1 | 3;
  /** Balancing policy by Portico's name; each proxy maps it to its own (nginx: least_conn). */
  balance?: 'least_requests';
  /** Client side is HTTPS (ECDSA P-256 test certificate, same for every proxy). */
  tls?: boolean;
  /**
   * "Connection: close" on every request: one new connection (and TLS handshake) per request.
   * With `tls`, the proxies are configured without session resumption (no tickets, no session
   * cache): wrk resumes TLS sessions whenever the server lets it, which would measure cheap
   * resumptions instead of full handshakes. The bench checks this before measuring.
   */
  newConnectionPerRequest?: boolean;
  /** Proxy ids (bench/proxies.ts) measured in this scenario, in table order. */
  proxies: readonly string[];
  /** Which issue asked for the row. */
  issue: number;
}

const ALL = ['portico', 'portico-log', 'nginx', 'nginx-bare', 'http-proxy', 'fastify-http-proxy'] as const;
const SMALL = Buffer.byteLength(SMALL_BODY);

export const SCENARIOS: readonly Scenario[] = [
  { id: 'small', title: 'small GET, keep-alive', path: '/small', expectBytes: SMALL, targets: 1, proxies: ALL, issue: 2 },
  { id: '1mib', title: '1 MiB GET, keep-alive', path: '/1m', expectBytes: LARGE_BYTES, targets: 1, proxies: ALL, issue: 2 },
  {
    id: 'small-3-least', title: 'small GET, keep-alive, 3 targets, least_requests', path: '/small', expectBytes: SMALL,
    targets: 3, balance: 'least_requests', proxies: ['portico', 'nginx', 'nginx-bare'], issue: 3,
  },
  {
    id: 'https-small', title: 'HTTPS small GET, keep-alive', path: '/small', expectBytes: SMALL,
    targets: 1, tls: true, proxies: ['portico', 'nginx', 'nginx-bare'], issue: 4,
  },
  {
    id: 'https-handshake', title: 'HTTPS new connection per request (full TLS handshake)', path: '/small', expectBytes: SMALL,
    targets: 1, tls: true, newConnectionPerRequest: true, proxies: ['portico', 'nginx', 'nginx-bare'], issue: 4,
  },
];

export interface RatioSpec {
  label: string;
  numerator: { scenario: string; proxy: string };
  /** The best (highest req/CPU-s) of these proxies in `scenario` is the denominator. */
  denominator: { scenario: string; proxies: readonly string[] };
  /** Minimum the issue asks for, if any. */
  target?: number;
  issue: number;
}

const NODE_PEERS = ['http-proxy', 'fastify-http-proxy'];

export const RATIOS: readonly RatioSpec[] = [
  { label: 'small: Portico / nginx', numerator: { scenario: 'small', proxy: 'portico' }, denominator: { scenario: 'small', proxies: ['nginx'] }, target: 0.45, issue: 2 },
  { label: 'small: Portico / best Node peer', numerator: { scenario: 'small', proxy: 'portico' }, denominator: { scenario: 'small', proxies: NODE_PEERS }, target: 1.5, issue: 2 },
  { label: 'small: Portico / nginx without forwarding headers', numerator: { scenario: 'small', proxy: 'portico' }, denominator: { scenario: 'small', proxies: ['nginx-bare'] }, issue: 2 },
  { label: 'small: Portico (access log) / Portico', numerator: { scenario: 'small', proxy: 'portico-log' }, denominator: { scenario: 'small', proxies: ['portico'] }, issue: 2 },
  { label: '1 MiB: Portico / nginx', numerator: { scenario: '1mib', proxy: 'portico' }, denominator: { scenario: '1mib', proxies: ['nginx'] }, issue: 2 },
  { label: '1 MiB: Portico / best Node peer', numerator: { scenario: '1mib', proxy: 'portico' }, denominator: { scenario: '1mib', proxies: NODE_PEERS }, issue: 2 },
  { label: '3 targets least_requests / 1 target (Portico)', numerator: { scenario: 'small-3-least', proxy: 'portico' }, denominator: { scenario: 'small', proxies: ['portico'] }, target: 0.95, issue: 3 },
  { label: '3 targets: Portico / nginx', numerator: { scenario: 'small-3-least', proxy: 'portico' }, denominator: { scenario: 'small-3-least', proxies: ['nginx'] }, issue: 3 },
  { label: 'HTTPS keep-alive: Portico / nginx', numerator: { scenario: 'https-small', proxy: 'portico' }, denominator: { scenario: 'https-small', proxies: ['nginx'] }, target: 0.5, issue: 4 },
  { label: 'HTTPS handshakes: Portico / nginx', numerator: { scenario: 'https-handshake', proxy: 'portico' }, denominator: { scenario: 'https-handshake', proxies: ['nginx'] }, target: 0.5, issue: 4 },
];
