// Where keyport-auth's main thread spends CPU during a measured window: V8's sampling profiler, started
// and stopped in the running process through its inspector (SIGUSR1 opens it on the loopback port that
// `--inspect-port=127.0.0.1:0` in NODE_OPTIONS lets the kernel pick; `--cpu-prof` is not allowed in
// NODE_OPTIONS on Node 20), its samples split two ways, in ms per login:
// - by step: the innermost frame on the stack that is one of a login's steps (STEPS, by function name),
//   else the library or layer the sample's leaf is in, so each sample counts once;
// - by leaf: the package or layer that ran the sample's own code (self time).
// The profile sees the main JavaScript thread only; /proc's utime + stime (the bench's CPU per login) also
// counts the libuv pool, V8's GC helpers and the kernel's side of the sockets. A sample stands for the
// time to the next one, descheduled time included: on a loaded machine the totals swell, the shares hold.
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import WebSocket from 'ws';

/** keyport-auth's environment for profiling: its inspector, once opened, on a free loopback port. */
export const PROFILED_ENV = { NODE_OPTIONS: '--inspect-port=127.0.0.1:0' };
const SAMPLING_INTERVAL_US = 250;

interface CallFrame {
  functionName: string;
  url: string;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  /** µs on the machine's monotonic clock (process.hrtime's). */
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A login's steps, innermost first wins: the function names (and, where a name is ambiguous, its file). */
const STEPS: { step: string; fn: string; file?: string }[] = [
  { step: 'assertion verify (ES256, node:crypto)', fn: 'verifyEs256Assertion' },
  { step: 'SSH certificate', fn: 'signSshUserCertificate' },
  { step: 'X.509 certificate', fn: 'issueClientCertificate' },
  { step: 'parse the session keys', fn: 'parseLoginRequest' },
  { step: 'request bounds', fn: 'checkRequestBounds' },
  { step: 'call context (peer, metadata)', fn: 'callContext' },
  { step: 'challenge: options, payload', fn: 'createPasswordlessChallenge' },
  { step: 'challenge: options, payload', fn: 'createCountedPasswordlessChallenge' },
  { step: 'challenge: spend, payload', fn: 'checkSpent' },
  { step: 'challenge: spend, passkey read', fn: 'spendReadingPasskey' },
  { step: 'audit row', fn: 'rowsOf' },
  { step: 'audit row', fn: 'acceptCounterWithAudit' },
  { step: 'identity, roles, logins', fn: 'sessionIdentityOf' },
  { step: 'key policy', fn: 'checkSessionKey' },
];

/** Where a leaf's code lives: a package, a layer of keyport, or node's internals. */
function layerOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName.startsWith('(')) return functionName; // (garbage collector), (program), (idle)
    return 'native (crypto, buffers, sockets)';
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return pkg === 'kysely' || pkg === 'better-sqlite3' || pkg === 'pg' ? `${pkg} (storage)` : pkg;
  if (url.startsWith('node:')) {
    const module = url.slice('node:'.length);
    if (/^internal\/(http2|stream|streams|tls|net|_tls|_http)|^(_tls|tls|net|http2|stream)/.test(module))
      return 'node: http2, tls, streams';
    if (/^internal\/crypto|^crypto/.test(module)) return 'node: crypto';
    if (/^internal\/(process\/task_queues|async_hooks|timers)|^timers/.test(module))
      return 'node: ticks, timers, promises';
    return 'node: other';
  }
  const file = /\/(auth|proto|client)\/(.*)$/.exec(url);
  if (file) {
    if (file[1] === 'proto' && file[2]!.startsWith('gen/')) return 'protobuf codec (proto/gen)';
    if (file[1] === 'auth' && file[2]!.startsWith('storage/')) return 'keyport: auth/storage';
    return `keyport: ${file[1]}/${file[2]!.split('/')[0]!.replace(/\.ts$/, '')}`;
  }
  return url.replace(/^.*\//, '');
}

export interface ProfileBreakdown {
  sampled_ms_per_login: number;
  by_step: Record<string, number>;
  by_leaf: Record<string, number>;
  top_functions: Record<string, number>;
}

export interface Profiling {
  /** Stops the profiler and returns its profile. */
  stop(): Promise<CpuProfile>;
}

/**
 * Starts V8's profiler in a keyport-auth started with PROFILED_ENV: SIGUSR1 opens its inspector, whose
 * address it prints on standard error (`output`).
 */
export async function startProfiling(child: ChildProcess, output: () => string): Promise<Profiling> {
  const listening = () => /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(output())?.[1];
  if (!listening()) child.kill('SIGUSR1');
  for (let waited = 0; !listening(); waited += 20) {
    if (waited > 10_000) throw new Error(`keyport-auth ${child.pid} opened no inspector:\n${output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const socket = new WebSocket(listening()!);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  let nextId = 1;
  const pending = new Map<number, (result: unknown) => void>();
  socket.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString()) as { id?: number; result?: unknown };
    if (message.id !== undefined) pending.get(message.id)?.(message.result);
  });
  const send = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  await send('Profiler.enable');
  await send('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
  await send('Profiler.start');
  return {
    async stop() {
      const { profile } = (await send('Profiler.stop')) as { profile: CpuProfile };
      socket.close();
      // BENCH_PROFILE_DIR keeps the raw profile too, for Chrome DevTools or a closer look.
      const keepIn = process.env['BENCH_PROFILE_DIR'];
      if (keepIn) {
        await writeFile(
          join(keepIn, `keyport-auth-${child.pid}-${Date.now()}.cpuprofile`),
          JSON.stringify(profile),
        );
      }
      return profile;
    },
  };
}

/**
 * The profile's samples, as ms per login over `logins`; with `windows` ([start, end] in µs on the
 * monotonic clock), only the samples taken inside them.
 */
export function profileBreakdown(
  profile: CpuProfile,
  logins: number,
  windows?: [number, number][],
): ProfileBreakdown {
  const inWindows = (at: number) => !windows || windows.some(([start, end]) => at >= start && at < end);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const stepOfNode = new Map<number, string>();
  const stepOf = (id: number): string => {
    const known = stepOfNode.get(id);
    if (known) return known;
    let step: string | undefined;
    for (let at: number | undefined = id; at !== undefined && !step; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame;
      step = STEPS.find((s) => s.fn === frame.functionName && (!s.file || frame.url.includes(s.file)))?.step;
    }
    step ??= layerOf(byId.get(id)!.callFrame);
    stepOfNode.set(id, step);
    return step;
  };
  const byStep = new Map<string, number>();
  const byLeaf = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
  let total = 0;
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    // A sample stands for the time until the next one.
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (!inWindows(at)) continue;
    const id = profile.samples[i]!;
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)') continue;
    total += us;
    add(byStep, stepOf(id), us);
    add(byLeaf, layerOf(frame), us);
    add(byFunction, `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\//, '')}`, us);
  }
  const perLogin = (map: Map<string, number>, limit = Infinity) =>
    Object.fromEntries(
      [...map.entries()]
        .sort(([, a], [, b]) => b - a)
        .slice(0, limit)
        .map(([key, us]) => [key, Number((us / 1000 / logins).toFixed(3))]),
    );
  return {
    sampled_ms_per_login: Number((total / 1000 / logins).toFixed(3)),
    by_step: perLogin(byStep),
    by_leaf: perLogin(byLeaf),
    top_functions: perLogin(byFunction, 25),
  };
}

export function printProfileBreakdown(name: string, b: ProfileBreakdown): void {
  console.log(`${name}: main-thread CPU per login ${b.sampled_ms_per_login} ms (sampled), by step:`);
  for (const [key, ms] of Object.entries(b.by_step)) console.log(`    ${key.padEnd(44)} ${ms.toFixed(3)}`);
  console.log('  by leaf (self time):');
  for (const [key, ms] of Object.entries(b.by_leaf)) console.log(`    ${key.padEnd(44)} ${ms.toFixed(3)}`);
  console.log('  top functions (self time):');
  for (const [key, ms] of Object.entries(b.top_functions))
    console.log(`    ${key.slice(0, 70).padEnd(72)} ${ms.toFixed(3)}`);
}
