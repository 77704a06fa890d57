// The server's step timings (proto/perf.ts): one `keyport-perf {json}` line on standard error per span.
import { perfSteps as steps } from '../proto/perf';
import type { PerfSteps } from '../proto/perf';

export type { PerfSteps };

export function perfSteps(span: string): PerfSteps {
  return steps(span, (record) => process.stderr.write(`keyport-perf ${JSON.stringify(record)}\n`));
}
