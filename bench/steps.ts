// Per-step breakdowns for the login benchmarks: the client's spans (client/perf.ts, in this process) and
// the server's (auth/perf.ts, `keyport-perf {json}` lines on keyport-auth's standard error), both
// recorded with KEYPORT_PERF=1, each step's median printed.
import type { PerfRecord } from '../client/perf';
import { median } from './stats';

/** Turns step timing on for this process and the keyport-auth processes it starts from now on. */
export function enableStepTimings(): void {
  process.env['KEYPORT_PERF'] = '1';
}

/** The server's spans in `output` (a lab cluster's), from the `from`-th character on. */
export function serverRecords(output: string, from = 0): PerfRecord[] {
  const records: PerfRecord[] = [];
  for (const line of output.slice(from).split('\n')) {
    const at = line.indexOf('keyport-perf {');
    if (at >= 0) records.push(JSON.parse(line.slice(at + 'keyport-perf '.length)) as PerfRecord);
  }
  return records;
}

export type Breakdown = Record<string, Record<string, number>>;

/** Each span's steps, in their order, with the median milliseconds over the records. */
export function breakdown(records: readonly PerfRecord[]): Breakdown {
  const samples = new Map<string, Map<string, number[]>>();
  for (const { span, steps } of records) {
    const spanSteps = samples.get(span) ?? new Map<string, number[]>();
    samples.set(span, spanSteps);
    for (const [step, ms] of Object.entries(steps)) {
      const list = spanSteps.get(step) ?? [];
      list.push(ms);
      spanSteps.set(step, list);
    }
  }
  const result: Breakdown = {};
  for (const [span, steps] of samples) {
    result[span] = {};
    for (const [step, list] of steps) result[span][step] = Number(median(list).toFixed(3));
  }
  return result;
}

export function printBreakdown(name: string, table: Breakdown): void {
  console.log(`${name}: per-step medians (ms)`);
  for (const [span, steps] of Object.entries(table)) {
    console.log(`  ${span}`);
    for (const [step, ms] of Object.entries(steps)) console.log(`    ${step.padEnd(40)} ${ms.toFixed(3)}`);
  }
}
