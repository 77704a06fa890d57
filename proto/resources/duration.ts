const UNIT_SECONDS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6, // U+00B5 MICRO SIGN
  μs: 1e-6, // U+03BC GREEK SMALL LETTER MU; Go accepts both spellings
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

// Longer units first within a prefix so "30ms" is read as milliseconds, not minutes then "s".
const DURATION_COMPONENT = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a Go `time.ParseDuration` string without a sign ("8h", "30m", "1h30m", "1.5h", "30h0m0s")
 * into seconds. Returns undefined for anything else.
 */
export function parseGoDurationSeconds(text: string): number | undefined {
  if (text === '0') return 0;
  if (text === '') return undefined;
  let totalSeconds = 0;
  let offset = 0;
  while (offset < text.length) {
    DURATION_COMPONENT.lastIndex = offset;
    const component = DURATION_COMPONENT.exec(text);
    const unitSeconds = component?.[2] === undefined ? undefined : UNIT_SECONDS[component[2]];
    if (component === null || unitSeconds === undefined) return undefined;
    totalSeconds += Number(component[1]) * unitSeconds;
    offset = DURATION_COMPONENT.lastIndex;
  }
  // Rounded to whole nanoseconds so "0.1s" + "0.2s" style sums do not print as 0.30000000000000004.
  return Math.round(totalSeconds * 1e9) / 1e9;
}
