// Results: the rows and ratios, printed as a text table and written as JSON and markdown.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RATIOS, type Scenario } from './scenarios.js';

export interface Row {
  scenario: string;
  proxy: string;
  label: string;
  /** Set when the proxy could not be measured in this scenario (the reason). */
  skipped?: string;
  requests?: number;
  seconds?: number;
  requestsPerSecond?: number;
  cpuSeconds?: number;
  /** Proxy CPU time / wall time (100 = one core saturated). */
  cpuPercent?: number;
  requestsPerCpuSecond?: number;
  latencyMs?: { p50: number; p75: number; p90: number; p99: number };
  errors?: number;
  errorDetail?: string;
  /** Busy share of the proxy core not spent in the proxy process (other work, softirq). */
  proxyCoreOtherPercent?: number;
  /** Busy share of the core running wrk and the backend. */
  loadCoreBusyPercent?: number;
  note?: string;
  /** HTTPS rows: whether the proxy resumed a TLS 1.2 session when offered one (checked before measuring). */
  tlsResumption?: boolean;
  /** HTTPS rows: protocol and cipher a TLS 1.2 client got (server preference decides). */
  tlsNegotiated?: string;
  /** The row does not measure exactly what the scenario asks (see note); ratios using it have no verdict. */
  fallback?: boolean;
  /** Connections the proxy opened to the backend during the measured run (keep-alive: ~0). */
  upstreamConnections?: number;
  /** Requests the backend served during the measured run (should equal `requests`, ± in-flight). */
  upstreamRequests?: number;
  /** With --repeat: req/CPU-s of every run (null: failed); the row shows the best. */
  runs?: (number | null)[];
}

export interface Ratio {
  label: string;
  value?: number;
  target?: number;
  pass?: boolean;
  detail: string;
  issue: number;
}

export interface Results {
  date: string;
  machine: Record<string, string | number>;
  options: Record<string, unknown>;
  scenarios: { id: string; title: string }[];
  rows: Row[];
  ratios: Ratio[];
}

export function computeRatios(rows: readonly Row[]): Ratio[] {
  const find = (scenario: string, proxy: string): Row | undefined =>
    rows.find((r) => r.scenario === scenario && r.proxy === proxy && r.requestsPerCpuSecond !== undefined);
  const out: Ratio[] = [];
  for (const spec of RATIOS) {
    const num = find(spec.numerator.scenario, spec.numerator.proxy);
    const dens = spec.denominator.proxies.map((p) => find(spec.denominator.scenario, p)).filter((r): r is Row => r !== undefined);
    const den = dens.sort((a, b) => b.requestsPerCpuSecond! - a.requestsPerCpuSecond!)[0];
    if (!num || !den) continue;
    const value = num.requestsPerCpuSecond! / den.requestsPerCpuSecond!;
    const ratio: Ratio = {
      label: spec.label, value, issue: spec.issue,
      detail: `${fmtInt(num.requestsPerCpuSecond!)} / ${fmtInt(den.requestsPerCpuSecond!)} (${den.label})`,
    };
    if (spec.target !== undefined) ratio.target = spec.target;
    if (num.fallback || den.fallback) ratio.detail += '; a row measured a fallback (see its note): no verdict';
    else if (spec.target !== undefined) ratio.pass = value >= spec.target;
    out.push(ratio);
  }
  return out;
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Multi-line reasons (config errors) are cut to their first two lines for the tables; the JSON has them whole. */
function oneLine(s: string): string {
  return s.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 2).join(' ').slice(0, 200);
}

function fmtMs(n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return '–';
  return n < 1 ? `${(n * 1000).toFixed(0)} µs` : `${n.toFixed(2)} ms`;
}

const HEAD = ['Proxy', 'req/s', 'proxy CPU', 'req/CPU-s', 'p50', 'p99', 'errors', 'notes'];

function cells(r: Row): string[] {
  if (r.skipped !== undefined) return [r.label, '–', '–', '–', '–', '–', '–', `not measured: ${oneLine(r.skipped)}`];
  const notes: string[] = [];
  if (r.note) notes.push(r.note);
  if ((r.proxyCoreOtherPercent ?? 0) > 10) notes.push(`proxy core ${r.proxyCoreOtherPercent!.toFixed(0)}% busy with other work`);
  if ((r.loadCoreBusyPercent ?? 0) >= 95) notes.push('load core saturated (wrk + backend): proxy not at full load');
  if (r.errorDetail) notes.push(r.errorDetail);
  // A few dozen are normal: wrk closing its connections at the end of the warm-up aborts the
  // responses in flight, and their upstream connections cannot be reused. Without keep-alive the
  // count would be close to the number of requests.
  if (r.upstreamConnections !== undefined && r.requests !== undefined && r.upstreamConnections > Math.max(10, r.requests / 10)) {
    notes.push(`${fmtInt(r.upstreamConnections)} new upstream connections: upstream keep-alive not effective`);
  }
  return [
    r.label, fmtInt(r.requestsPerSecond!), `${r.cpuPercent!.toFixed(0)}%`, fmtInt(r.requestsPerCpuSecond!),
    fmtMs(r.latencyMs?.p50), fmtMs(r.latencyMs?.p99), String(r.errors ?? 0), notes.join('; '),
  ];
}

export function textTable(results: Results, scenarios: readonly Scenario[]): string {
  const lines: string[] = [];
  for (const sc of scenarios) {
    const rows = results.rows.filter((r) => r.scenario === sc.id);
    if (rows.length === 0) continue;
    const table = [HEAD, ...rows.map(cells)];
    const widths = HEAD.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
    lines.push('', `${sc.title}  [${sc.id}]`);
    for (const row of table) {
      lines.push(row.map((c, i) => (i === 0 || i === row.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
    }
  }
  if (results.ratios.length > 0) {
    lines.push('', 'Ratios of requests per CPU-second');
    for (const r of results.ratios) {
      const verdict = r.target === undefined ? '' : `  target ≥ ${r.target}: ${r.pass === undefined ? 'no verdict' : r.pass ? 'met' : 'NOT met'}`;
      lines.push(`  ${r.label.padEnd(46)} ${r.value!.toFixed(3)}×  ${r.detail}${verdict}`);
    }
  }
  return lines.join('\n');
}

export function markdown(results: Results, scenarios: readonly Scenario[]): string {
  const m = results.machine;
  const out: string[] = [
    `Portico ${String(m.portico)}, measured ${results.date} on ${m.cpuModel} (${m.cpus} cores), ${m.kernel}; Node ${m.node}, nginx ${m.nginx}, ${m.wrk}.`,
    `Each proxy pinned to core ${String(results.options.proxyCpu)}; backend (nginx) and wrk (${String(results.options.threads)} thread, ${String(results.options.connections)} connections) on core ${String(results.options.loadCpu)}; ` +
      `${String(results.options.warmup)} s warm-up, ${String(results.options.duration)} s measured${Number(results.options.repeat) > 1 ? ` (best of ${String(results.options.repeat)} runs)` : ''}. req/CPU-s = requests / (utime+stime of the proxy process; nginx: master + worker).`,
    `Load average ${String(m.loadavgAtStart)} at start, ${String(m.loadavgAtEnd ?? '?')} at end (other jobs on the machine make figures noisy; see the notes column).`,
    '',
  ];
  for (const sc of scenarios) {
    const rows = results.rows.filter((r) => r.scenario === sc.id);
    if (rows.length === 0) continue;
    out.push(`**${sc.title}**`, '', `| ${HEAD.join(' | ')} |`, `|${HEAD.map((_, i) => (i === 0 || i === HEAD.length - 1 ? ' --- ' : ' ---: ')).join('|')}|`);
    for (const r of rows) out.push(`| ${cells(r).map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
    out.push('');
  }
  if (results.ratios.length > 0) {
    out.push('| Ratio (req/CPU-s) | value | target |', '| --- | ---: | --- |');
    for (const r of results.ratios) {
      const verdict = r.pass === undefined ? 'no verdict: fallback row' : r.pass ? 'met' : 'not met';
      out.push(`| ${r.label} | ${r.value!.toFixed(3)}× | ${r.target === undefined ? '' : `≥ ${r.target} (${verdict})`} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

export function writeResults(dir: string, results: Results, scenarios: readonly Scenario[]): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const stamp = results.date.replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
  const json = join(dir, `bench-${stamp}.json`);
  const md = join(dir, `bench-${stamp}.md`);
  const jsonText = `${JSON.stringify(results, null, 2)}\n`;
  const mdText = markdown(results, scenarios);
  writeFileSync(json, jsonText);
  writeFileSync(md, mdText);
  writeFileSync(join(dir, 'latest.json'), jsonText);
  writeFileSync(join(dir, 'latest.md'), mdText);
  return { json, md };
}
