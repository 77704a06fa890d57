// npm run test:load: the test suite on a machine whose cores are all kept busy by another process
// (stress-ng --cpu N, one worker per core), as CI machines shared with other work are. `--runs N` runs
// the suite N times in a row and prints each run's result and time; it stops at the first red run.
// Plain Node: it starts stress-ng itself and ends it, by its PID, however the runs end.
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

const args = process.argv.slice(2);
let runs = 1;
const runsAt = args.indexOf('--runs');
if (runsAt !== -1) {
  runs = Number(args[runsAt + 1]);
  args.splice(runsAt, 2);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error('under-load: --runs takes a whole number ≥ 1');
    process.exit(2);
  }
}

if (spawnSync('stress-ng', ['--version']).status !== 0) {
  console.error('under-load: stress-ng is missing (node lab/system-packages.mjs load installs it).');
  process.exit(1);
}
const cpus = availableParallelism();
const stress = spawn('stress-ng', ['--cpu', String(cpus), '--quiet'], { stdio: 'ignore' });
const stopStress = () => {
  if (stress.exitCode === null && stress.signalCode === null && stress.pid)
    process.kill(stress.pid, 'SIGTERM');
};
process.once('SIGINT', () => {
  stopStress();
  process.exit(130);
});
process.once('exit', stopStress);
console.log(`under-load: stress-ng --cpu ${cpus} (pid ${stress.pid}) keeps every core busy`);

function runSuite() {
  return new Promise((resolve) => {
    const child = spawn('npx', ['vitest', 'run', ...args], { stdio: 'inherit' });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const results = [];
let code = 0;
for (let run = 1; run <= runs; run++) {
  const started = Date.now();
  code = await runSuite();
  results.push(
    `run ${run}/${runs}: ${code === 0 ? 'green' : `red (exit ${code})`} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  if (code !== 0) break;
}
stopStress();
console.log(`under-load (stress-ng --cpu ${cpus}):\n  ${results.join('\n  ')}`);
process.exit(code);
