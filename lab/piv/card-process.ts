// The virtual card as a process: it runs inside the lab's private network namespace (lab.ts puts it
// there), connects to vpcd on 127.0.0.1 and serves its control socket. One JSON line on stdout says it
// is ready; SIGTERM or the end of stdin stops it. The card waits out of the reader until told to go in.
//   card-process.ts --state FILE --control SOCKET [--port 35963] [--touch auto|manual|denied]
//                   [--touch-timeout-ms 15000]
// Its clock is proto/clock.ts's: KEYPORT_LAB_CLOCK moves it (touch caching is measured on it).
import { parseArgs } from 'node:util';
import { clockFromEnv } from '../../proto/clock';
import { PivCard } from './card';
import type { ControlReply, ControlRequest } from './control';
import { serveControl } from './control';
import { readCardState, writeCardState } from './state';
import { DEFAULT_TOUCH_TIMEOUT_MS, parseTouchMode, TouchController } from './touch';
import { VPCD_DEFAULT_PORT, VpcdLink } from './vpcd';

const { values } = parseArgs({
  options: {
    state: { type: 'string' },
    control: { type: 'string' },
    port: { type: 'string', default: String(VPCD_DEFAULT_PORT) },
    touch: { type: 'string', default: 'auto' },
    'touch-timeout-ms': { type: 'string', default: String(DEFAULT_TOUCH_TIMEOUT_MS) },
  },
});
if (!values.state || !values.control) {
  console.error('card-process: --state and --control are required');
  process.exit(2);
}
const statePath = values.state;
const state = readCardState(statePath);
if (!state) {
  console.error(`card-process: no card state at ${statePath}`);
  process.exit(2);
}

let broadcast: (event: { event: string } & Record<string, unknown>) => void = () => {};
const touch = new TouchController(
  parseTouchMode(values.touch),
  (event) => broadcast(event),
  Number(values['touch-timeout-ms']),
);
const card = new PivCard(state, {
  now: clockFromEnv(),
  touch,
  save: (s) => writeCardState(statePath, s),
});

let apdus = 0;
let byIns: Record<string, number> = {};
const link = new VpcdLink({
  card,
  port: Number(values.port),
  emit: (event) => broadcast(event),
  onRemoved: () => touch.cancel(),
  onApdu: (apdu) => {
    apdus += 1;
    const ins = (apdu[1] ?? 0).toString(16).padStart(2, '0');
    byIns[ins] = (byIns[ins] ?? 0) + 1;
  },
});

async function handle(request: ControlRequest): Promise<ControlReply> {
  if ('touch' in request) {
    return touch.answer(request.touch)
      ? { reply: 'touch', ok: true }
      : { reply: 'touch', ok: false, error: 'no touch request is waiting' };
  }
  if ('touchMode' in request) {
    touch.mode = request.touchMode;
    return { reply: 'touchMode', ok: true };
  }
  if ('card' in request) {
    if (request.card === 'remove') await link.remove();
    else link.insert();
    return { reply: 'card', ok: true };
  }
  const reply = { reply: 'stats', ok: true, apdus, byIns: { ...byIns } };
  if (request.stats === 'reset') {
    apdus = 0;
    byIns = {};
  }
  return reply;
}

const control = await serveControl(values.control, handle);
broadcast = (event) => control.broadcast(event);
// The card starts out of the reader: the launcher inserts it once it listens for the events.

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  touch.cancel();
  await link.close();
  await control.close();
  process.exit(0);
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.resume();
process.stdout.write(
  `${JSON.stringify({ event: 'ready', serial: state.serial, control: values.control })}\n`,
);
