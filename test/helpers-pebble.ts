// Pebble (Let's Encrypt's test ACME server) on loopback, for the ACME tests.
//
// Each call starts its own pebble + pebble-challtestsrv (as a DNS server answering 127.0.0.1 for
// every name, so the CA validates against our listeners) in a temp dir, with:
//   - Pebble's HTTPS listener on a certificate from a throwaway LocalCa (its ca.pem is what the
//     ACME client is told to trust: the same path a private CA's `ca_bundle` takes);
//   - httpPort / tlsPort pointing at the ports the test's own listeners use;
//   - PEBBLE_VA_NOSLEEP (no artificial delays), no nonce rejection, no authorization reuse (so a
//     renewal is validated again, not waved through).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { LocalCa } from '../src/tls/local-ca.js';

export interface Pebble {
  /** ACME directory URL. */
  directory: string;
  /** PEM file to trust for the directory's HTTPS (tls.acme.ca_bundle). */
  caBundle: string;
  /** Pebble's issuing root, PEM: a client trusting it verifies issued certificates. */
  issuerRoot: string;
  dir: string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Port Pebble's VA connects to for http-01. */
  httpPort: number;
  /** Port Pebble's VA connects to for tls-alpn-01 (default: an unused port). */
  tlsPort?: number;
  /** Lifetime of issued certificates in seconds (Pebble's default is 5 years minus a bit). */
  certificateValidityPeriod?: number;
  /** Skip real validation (PEBBLE_VA_ALWAYS_VALID). */
  alwaysValid?: boolean;
  /** Require external account binding with these { kid: base64url HMAC key } pairs. */
  eab?: Record<string, string>;
}

/** A TCP port that was free a moment ago (bound to 0, then released). */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A port free for both UDP and TCP (DNS uses both). */
async function freeDnsPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (ok) return port;
  }
  throw new Error('no free port for the test DNS server');
}

export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'portico-pebble-'));
  const ca = await LocalCa.open(join(dir, 'ca'), 'Pebble Listener Test CA');
  const listenerCert = await ca.issue(['localhost', '127.0.0.1'], 86_400_000);
  await writeFile(join(dir, 'cert.pem'), listenerCert.cert);
  await writeFile(join(dir, 'key.pem'), listenerCert.key, { mode: 0o600 });

  const [acmePort, mgmtPort, dnsPort, challMgmtPort] = [await freePort(), await freePort(), await freeDnsPort(), await freePort()];
  const tlsPort = options.tlsPort ?? await freePort();
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: join(dir, 'cert.pem'),
      privateKey: join(dir, 'key.pem'),
      httpPort: options.httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: options.eab !== undefined,
      ...(options.eab ? { externalAccountMACKeys: options.eab } : {}),
      ...(options.certificateValidityPeriod ? { certificateValidityPeriod: options.certificateValidityPeriod } : {}),
    },
  };
  await writeFile(join(dir, 'pebble-config.json'), JSON.stringify(config, null, 2));

  const children: ChildProcess[] = [];
  // Whatever happens to the test, no Pebble outlives the test process.
  const killAll = () => { for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  process.once('exit', killAll);
  const stop = async () => {
    process.off('exit', killAll);
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // Every A query answers 127.0.0.1; no AAAA, so the VA never tries ::1 where nothing listens.
    const dns = spawn('pebble-challtestsrv', [
      '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
      '-management', `127.0.0.1:${challMgmtPort}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(dns);
    await waitForOutput(dns, /Starting challenge servers|Answering A questions|dnsOne/i, 'pebble-challtestsrv');

    const env = {
      ...process.env,
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
      PEBBLE_AUTHZREUSE: '0',
      ...(options.alwaysValid ? { PEBBLE_VA_ALWAYS_VALID: '1' } : {}),
    };
    const pebble = spawn('pebble', ['-config', join(dir, 'pebble-config.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(pebble);
    await waitForOutput(pebble, /ACME directory available at/i, 'pebble');

    // The management listener may come up a moment after the directory is announced.
    let issuerRoot: string | undefined;
    for (let i = 0; issuerRoot === undefined; i++) {
      try {
        issuerRoot = await getText(`https://127.0.0.1:${mgmtPort}/roots/0`, ca.certPem);
      } catch (err) {
        if (i >= 50) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return { directory: `https://127.0.0.1:${acmePort}/dir`, caBundle: ca.certPath, issuerRoot, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function waitForOutput(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) { cleanup(); resolve(); }
    };
    const onExit = (code: number | null) => { cleanup(); reject(new Error(`${what} exited (${code}) before it was ready:\n${seen}`)); };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`${what} not ready after ${timeoutMs} ms:\n${seen}`)); }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      // Keep draining so a chatty child never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.resume();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function getText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpsRequest(url, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode} ${body}`))));
    }).on('error', reject).end();
  });
}
