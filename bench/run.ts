// npm run bench: every benchmark, each reporting a ratio against a floor measured in the same run.
import { benchLogin } from './login.bench';

// grpc-js sends an IP target as TLS SNI, which Node flags (DEP0123); the notice is noise here.
process.removeAllListeners('warning');

const login = await benchLogin();
if (login.round_trips_per_login !== login.round_trip_target) {
  console.error(`round trips per login: ${login.round_trips_per_login} (target ${login.round_trip_target})`);
  process.exit(1);
}
