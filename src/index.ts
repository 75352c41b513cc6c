// The programmatic API: embed Portico in a Node program, or start it from tests.
import { validateConfigObject, loadConfigFile, parseConfigText } from './config/load.js';
import type { ConfigInput, Config } from './config/schema.js';
import { Portico } from './server/portico.js';

export { Portico } from './server/portico.js';
export { ConfigError, formatProblem, type ConfigProblem } from './config/errors.js';
export { loadConfigFile, parseConfigText, validateConfigObject } from './config/load.js';
export { ConfigSchema, type Config, type ConfigInput } from './config/schema.js';
export type { UpstreamStatus, TargetStatus } from './upstream/upstream.js';

/** Starts Portico from an object config (the same shape as portico.yaml). Throws ConfigError when invalid. */
export async function createPortico(config: ConfigInput): Promise<Portico> {
  return Portico.start(validateConfigObject(config));
}

/** Starts Portico from a YAML file. */
export async function createPorticoFromFile(file: string): Promise<Portico> {
  return Portico.start(await loadConfigFile(file), { file });
}

/** Validates without starting anything. */
export function validateConfig(config: ConfigInput | string): Config {
  return typeof config === 'string' ? parseConfigText(config) : validateConfigObject(config);
}
