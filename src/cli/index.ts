// `portico` — the command line. Exit codes: 0 ok; 1 invalid config or usage; 2 cannot start
// (e.g. address in use); 70 internal error.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { loadConfigFile, validateConfigObject } from '../config/load.js';
import { ConfigError } from '../config/errors.js';
import { ConfigSchema, type ConfigInput } from '../config/schema.js';
import { Portico } from '../server/portico.js';
import { isQuickHttpsFrom, quickHttpsConfig } from './quick-https.js';

export const EXIT = { ok: 0, invalid: 1, cannotStart: 2, internal: 70 } as const;

const VERSION: string = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const HELP: Record<string, string> = {
  main: `portico ${VERSION} — a reverse proxy and edge gateway

Usage:
  portico [run] [--config portico.yaml]      serve from a config file (the default command)
  portico proxy --from ADDR --to TARGET...     proxy one address to one or more targets
  portico validate [--config portico.yaml]     check a config file; prints "ok" or the errors
  portico schema                               print the JSON Schema of the config
  portico --version | --help

Run "portico <command> --help" for a command's options.
Exit codes: 0 ok, 1 invalid config or usage, 2 cannot start (e.g. address in use), 70 internal error.
Signals: SIGHUP reloads the config, SIGUSR1 reopens log files, SIGTERM/SIGINT stop gracefully.`,
  run: `Usage: portico run [--config FILE]

Serves from FILE (default: ./portico.yaml). The config is validated first; on errors nothing starts
and each error is printed as file:line: key: message (exit 1).

  -c, --config FILE   the config file (default portico.yaml)
  -h, --help          this help

While running: SIGHUP reloads FILE (an invalid file is refused and the running config keeps
serving), SIGUSR1 reopens log files, SIGTERM/SIGINT stop accepting and finish in-flight requests
within server.timeouts.shutdown.`,
  proxy: `Usage: portico proxy --from ADDR --to TARGET [--to TARGET...] [options]

Proxies everything arriving on ADDR to the targets, like nginx's
  location / { proxy_pass http://TARGET; proxy_set_header Host $host; ... WebSocket upgrade ... }

  --from ADDR            listen address: "127.0.0.1:8080", ":8080" or "unix:/path" (plain HTTP),
                         or a bare host name "example.com" (HTTPS, see below)
  --to TARGET            "http://127.0.0.1:8000", "127.0.0.1:8000" or "unix:/run/app.sock"; repeat for several
  --change-host-header   send the target's address as Host instead of the client's
  --access-log FORMAT    "json" (default), "combined" or "off"
  -h, --help             this help

HTTPS quick mode (--from is a host name without a port), like "caddy reverse-proxy":
serves the name on port 443 with an automatic certificate (ACME, Let's Encrypt by default) and
redirects port 80 to it. "localhost", "*.localhost" and IP addresses get a certificate from
Portico's local CA instead; the first run prints how to trust it.
  --http-port N          plain HTTP port (default 80)
  --https-port N         HTTPS port (default 443)
  --bind ADDR            interface to listen on (default: all)
  --email ADDR           ACME account contact
  --acme-directory URL   ACME directory (default: Let's Encrypt production)
  --acme-ca-bundle FILE  CA certificates to trust for the ACME directory (a private CA)
  --storage DIR          ACME state / local CA directory (default under $XDG_DATA_HOME/portico)`,
  validate: `Usage: portico validate [--config FILE]

Checks FILE (default ./portico.yaml). Prints "ok" and exits 0, or prints each error as
file:line:column: key: message and exits 1.`,
  schema: `Usage: portico schema

Prints the JSON Schema of portico.yaml (for editor completion; also shipped as schema/portico.schema.json).`,
};

export async function main(argv: string[]): Promise<number | undefined> {
  const [first] = argv;
  if (first === '--version' || first === '-v') { console.log(VERSION); return EXIT.ok; }
  if (first === undefined || first.startsWith('-')) {
    if (first === '--help' || first === '-h') { console.log(HELP.main); return EXIT.ok; }
    return run(argv);
  }
  const rest = argv.slice(1);
  switch (first) {
    case 'run': return run(rest);
    case 'proxy': return proxy(rest);
    case 'validate': return validate(rest);
    case 'schema':
      // Like every other command: --help prints its usage (it printed the schema before).
      if (rest.includes('--help') || rest.includes('-h')) { console.log(HELP.schema); return EXIT.ok; }
      console.log(JSON.stringify(jsonSchema(), null, 2)); return EXIT.ok;
    case 'help': console.log(HELP[rest[0] ?? 'main'] ?? HELP.main); return EXIT.ok;
    default:
      console.error(`portico: unknown command "${first}"\n\n${HELP.main}`);
      return EXIT.invalid;
  }
}

export function jsonSchema(): unknown {
  return { ...z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }), title: 'portico.yaml' };
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

function parse(argv: string[], command: string, options: OptionSpec): { values: Record<string, string | boolean | string[] | undefined> } | undefined {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true }) as
      { values: Record<string, string | boolean | string[] | undefined> };
  } catch (err) {
    console.error(`portico ${command}: ${(err as Error).message}\n\n${HELP[command]}`);
    return undefined;
  }
}

async function run(argv: string[]): Promise<number | undefined> {
  const args = parse(argv, 'run', { config: { type: 'string', short: 'c' } });
  if (!args) return EXIT.invalid;
  if (args.values.help) { console.log(HELP.run); return EXIT.ok; }
  const file = (args.values.config as string | undefined) ?? 'portico.yaml';
  let config;
  try {
    config = await loadConfigFile(file);
  } catch (err) {
    return reportConfigError(err);
  }
  return serve(() => Portico.start(config, { file }), async (portico) => {
    try {
      await portico.reload(await loadConfigFile(file), { file });
    } catch (err) {
      portico.log.error({ errors: err instanceof ConfigError ? err.problems : undefined, err: err instanceof ConfigError ? undefined : err },
        `reload refused, still serving the previous config: ${(err as Error).message}`);
    }
  });
}

async function proxy(argv: string[]): Promise<number | undefined> {
  const args = parse(argv, 'proxy', {
    from: { type: 'string' },
    to: { type: 'string', multiple: true },
    'change-host-header': { type: 'boolean' },
    'access-log': { type: 'string' },
    'http-port': { type: 'string' },
    'https-port': { type: 'string' },
    bind: { type: 'string' },
    email: { type: 'string' },
    'acme-directory': { type: 'string' },
    'acme-ca-bundle': { type: 'string' },
    storage: { type: 'string' },
  });
  if (!args) return EXIT.invalid;
  if (args.values.help) { console.log(HELP.proxy); return EXIT.ok; }
  const from = args.values.from as string | undefined;
  const to = (args.values.to as string[] | undefined) ?? [];
  if (!from || to.length === 0) {
    console.error(`portico proxy: --from and --to are required\n\n${HELP.proxy}`);
    return EXIT.invalid;
  }
  const accessLog = (args.values['access-log'] as string | undefined) ?? 'json';
  const input: ConfigInput = {
    server: { listen: [/^\d+$/.test(from) ? `:${from}` : from] },
    upstreams: { app: { targets: to, host: args.values['change-host-header'] ? 'target' : 'preserve' } },
    routes: [{ name: 'app', match: {}, upstream: 'app' }],
    log: { access: accessLog === 'off' ? { enabled: false } : { format: accessLog as 'json' | 'combined' } },
  };
  // A bare host name: HTTPS quick mode (src/cli/quick-https.ts).
  if (isQuickHttpsFrom(from)) {
    const str = (k: string) => args.values[k] as string | undefined;
    const port = (k: string) => { const v = str(k); return v === undefined ? undefined : Number(v); };
    for (const k of ['http-port', 'https-port']) {
      const p = port(k);
      if (p !== undefined && !(Number.isInteger(p) && p >= 0 && p <= 65535)) {
        console.error(`portico proxy: --${k}: expected a port number, got "${str(k)}"`);
        return EXIT.invalid;
      }
    }
    const quick = quickHttpsConfig({
      from, httpPort: port('http-port'), httpsPort: port('https-port'), bind: str('bind'), email: str('email'),
      acmeDirectory: str('acme-directory'), acmeCaBundle: str('acme-ca-bundle'), storage: str('storage'),
    });
    input.server = quick.server;
    input.tls = quick.tls;
  } else {
    const quickOnly = ['http-port', 'https-port', 'bind', 'email', 'acme-directory', 'acme-ca-bundle', 'storage'].filter((k) => args.values[k] !== undefined);
    if (quickOnly.length > 0) {
      console.error(`portico proxy: --${quickOnly[0]} applies to HTTPS quick mode only (--from a host name without a port, e.g. --from example.com)`);
      return EXIT.invalid;
    }
  }
  let config;
  try {
    config = validateConfigObject(input, 'command line');
  } catch (err) {
    return reportConfigError(err);
  }
  return serve(() => Portico.start(config), undefined);
}

async function validate(argv: string[]): Promise<number> {
  const args = parse(argv, 'validate', { config: { type: 'string', short: 'c' } });
  if (!args) return EXIT.invalid;
  if (args.values.help) { console.log(HELP.validate); return EXIT.ok; }
  const file = (args.values.config as string | undefined) ?? 'portico.yaml';
  try {
    const config = await loadConfigFile(file);
    // Compile-time checks (targets, templates) too, without binding anything.
    const { compilePlan } = await import('../config/compile.js');
    const { Logs } = await import('../observe/logs.js');
    const logs = new Logs({ access: { enabled: false, format: 'json', path: 'stdout' }, error: { level: 'silent', path: 'stderr' } });
    const plan = compilePlan({ config, generation: 0, logs, file });
    await Promise.all([...plan.targets.values()].map((t) => t.close()));
  } catch (err) {
    return reportConfigError(err);
  }
  console.log('ok');
  return EXIT.ok;
}

function reportConfigError(err: unknown): number {
  if (err instanceof ConfigError) {
    console.error(err.message);
    return EXIT.invalid;
  }
  throw err;
}

/** Starts, wires the signals, and resolves when stopped. */
async function serve(start: () => Promise<Portico>, onReload: ((p: Portico) => Promise<void>) | undefined): Promise<number | undefined> {
  let portico: Portico;
  try {
    portico = await start();
  } catch (err) {
    if (err instanceof ConfigError) return reportConfigError(err);
    console.error(`portico: ${(err as Error).message}`);
    return EXIT.cannotStart;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      portico.log.warn({ signal }, 'second signal: exiting now');
      process.exit(EXIT.ok);
    }
    stopping = true;
    portico.log.info({ signal }, 'stopping: finishing in-flight requests');
    void portico.close().then(() => process.exit(EXIT.ok));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGUSR1', () => portico.reopenLogs());
  let reloading: Promise<void> = Promise.resolve();
  process.on('SIGHUP', () => {
    if (!onReload) { portico.log.info('SIGHUP ignored: no config file to reload'); return; }
    reloading = reloading.then(() => onReload(portico));
  });
  return undefined;
}

// Allow `node dist/src/cli/index.js …` directly.
if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then((code) => { if (typeof code === 'number') process.exitCode = code; }, (err) => { console.error(err); process.exit(EXIT.internal); });
}

export { validateConfigObject };
