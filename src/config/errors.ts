/** One problem in a config file, located as precisely as the source allows. */
export interface ConfigProblem {
  file: string;
  line?: number | undefined;
  column?: number | undefined;
  /** Dotted key path, e.g. "routes[2].match.host". */
  key: string;
  message: string;
}

/** Thrown when a config cannot be used. `problems` lists every error found, not just the first. */
export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function formatProblem(p: ConfigProblem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}${p.column === undefined ? '' : `:${p.column}`}`;
  return `${where}: ${p.key || '(top level)'}: ${p.message}`;
}

export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}
