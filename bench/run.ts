// npm run bench: every benchmark, each reporting a ratio against a floor measured in the same run.
import { benchConnect } from './connect.bench';
import { benchDeviceLogin } from './device-login.bench';
import { benchLogin } from './login.bench';
import { benchPasswordless } from './passwordless.bench';
import { benchPiv } from './piv.bench';
import { benchPop } from './pop.bench';
import { benchProfileWatch } from './profile-watch.bench';
import { benchReplicas } from './replicas.bench';
import { benchSsh } from './ssh.bench';
import { benchSso } from './sso.bench';
import { benchTpmQuote } from './tpm-quote.bench';
import { benchWeb } from './web.bench';

// grpc-js sends an IP target as TLS SNI, which Node flags (DEP0123); the notice is noise here.
process.removeAllListeners('warning');

const only = process.argv[2];
if (only === 'connect') {
  await benchConnect();
  process.exit(0);
}
if (only === 'tpm-quote') {
  const quoted = await benchTpmQuote();
  process.exit(quoted.within_target ? 0 : 1);
}
if (only === 'login') {
  const logged = await benchLogin();
  process.exit(logged.round_trips_per_login === 2 ? 0 : 1);
}
if (only === 'device-login') {
  const logged = await benchDeviceLogin();
  process.exit(logged.round_trips_per_login === 2 ? 0 : 1);
}
if (only === 'passwordless') {
  const logged = await benchPasswordless();
  process.exit(logged.round_trips_per_login === 2 ? 0 : 1);
}
// Not in the full run: about two minutes (three configurations, 16 signups per backend, PostgreSQL; then
// the propagation of a change between the two replicas).
if (only === 'replicas') {
  const measured = await benchReplicas();
  process.exit(measured.within_target ? 0 : 1);
}
// Not in the full run (about 15 s: two modes, three rounds of sequential and concurrent calls); the card's
// proof of possession is measured by `npm run bench -- piv`.
if (only === 'pop') {
  await benchPop();
  process.exit(0);
}
// About 7 s: a lab PIV card on its own pcscd and a keyport-auth. First in the full run too, since
// libpcsclite takes one pcscd socket per process. Fails when the card counts more than one APDU per
// PIN-never signature.
if (only === 'piv') {
  const measured = await benchPiv();
  process.exit(measured.signature.apdus_per_signature.pin_never === 1 ? 0 : 1);
}
// Not in the full run (about a minute: two sshd nodes, 3 × BENCH_SSH_RUNS connections). Fails when a
// per-session-MFA connection takes other than 2 round trips to keyport-auth.
if (only === 'ssh') {
  const measured = await benchSsh();
  process.exit(measured.per_session.round_trips_per_session_mfa_connection === 2 ? 0 : 1);
}
// Not in the full run (about 20 s: a keyport-auth with its web listener, a soft key and a swtpm). Fails
// when one web-session approval takes other round trips than the design's (2 HTTP requests, 3 gRPC calls).
if (only === 'web') {
  const measured = await benchWeb();
  process.exit(measured.approval.round_trips_as_designed ? 0 : 1);
}
// Not in the full run (about 10 s: the lab IdP and a keyport-auth with its web listener). Fails when the
// logins' round trips differ from one login to the next.
if (only === 'sso') {
  const measured = await benchSso();
  process.exit(measured.round_trips_steady ? 0 : 1);
}
if (only === 'profile-watch') {
  const watched = await benchProfileWatch();
  process.exit(watched.within_target ? 0 : 1);
}
const piv = await benchPiv();
const results = [await benchLogin(), await benchPasswordless(), await benchDeviceLogin()];
await benchConnect();
const watched = await benchProfileWatch();
const quoted = await benchTpmQuote();
if (!quoted.within_target) console.error(`tpm-quote: ratio ${quoted.ratio}, target ${quoted.target_ratio}`);
if (!piv.signature.within_target)
  console.error(`piv: ratio ${piv.signature.ratio}, target ${piv.signature.target_ratio}`);
const pivApdus = piv.signature.apdus_per_signature.pin_never;
if (pivApdus !== 1) console.error(`piv: ${pivApdus} APDUs per PIN-never signature (target 1)`);
if (!watched.within_target)
  console.error(`profile-watch: p99 ${watched.measured_p99_ms} ms, target ${watched.target_ms} ms`);
const off = results.filter((r) => r.round_trips_per_login !== r.round_trip_target);
for (const r of off)
  console.error(
    `${r.bench}: ${r.round_trips_per_login} round trips per login (target ${r.round_trip_target})`,
  );
if (off.length > 0 || !watched.within_target || !quoted.within_target || pivApdus !== 1) process.exit(1);
