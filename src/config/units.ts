// Human-readable durations ("10s", "500ms", "1h30m") and sizes ("10mb", "512k").
// Parsed once, when the config is compiled; the request path only sees numbers.

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "1h30m", "10s", "250ms" (or a bare number of milliseconds). Returns undefined when invalid. */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined;
  const text = input.trim().toLowerCase();
  if (text === '0' || text === 'off') return 0;
  if (text === '') return undefined;
  DURATION_PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let m = DURATION_PART.exec(text); m !== null; m = DURATION_PART.exec(text)) {
    total += Number(m[1]) * DURATION_MS[m[2]!]!;
    consumed = DURATION_PART.lastIndex;
  }
  return consumed === text.length ? Math.round(total) : undefined;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/;
const SIZE_BYTES: Record<string, number> = {
  b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

/** Parses "10mb", "512k", "1gb" (binary multiples, as nginx does) or a bare number of bytes. */
export function parseSize(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? Math.floor(input) : undefined;
  const text = input.trim().toLowerCase();
  if (text === 'unlimited' || text === 'off') return 0;
  const m = SIZE.exec(text);
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * SIZE_BYTES[m[2] ?? 'b']!);
}
