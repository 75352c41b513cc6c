// `log:` — access and error logs.
import { z } from 'zod';

export const LogSchema = z
  .strictObject({
    access: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Write an access log line per request.'),
        format: z.enum(['json', 'combined']).default('json').describe('"json" (one object per line) or the nginx/Apache "combined" format.'),
        path: z.string().default('stdout').describe('"stdout", "stderr" or a file path (reopened on SIGUSR1).'),
      })
      .prefault({})
      .describe('The access log: one line per request.'),
    error: z
      .strictObject({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('Lowest level logged.'),
        path: z.string().default('stderr').describe('"stdout", "stderr" or a file path (reopened on SIGUSR1).'),
      })
      .prefault({})
      .describe('The error log (pino JSON): startup, reloads, upstream failures.'),
  })
  .prefault({})
  .describe('Access and error logs.');

