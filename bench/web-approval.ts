// The web-session approval ceremony's round trips and time (bench/web.bench.ts runs it on its cluster):
// a browser session signed in untrusted (device trust required by the cap) asks for the keyport:// link
// (HTTP), Keyport Connect's own client code reads the request for its screen and approves it with a real
// swtpm's quote (client/device-trust/web-approval.ts: GetWebSessionApproval, BeginWebSessionApproval,
// ApproveWebSession, each on the app's fresh connection as the app makes it), and the browser opens the
// confirm URL (HTTP). The requests and calls are counted; a count other than the design's (2 HTTP, 3 gRPC,
// docs/architecture.md "Web-session approval") fails the run. The floor, in the same run: one TPM quote on
// an open TPM, three gRPC health checks on an open mTLS channel and two bare HTTPS requests (the app's
// index.html) on the page's connection.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loginWithPassword } from '../client/ceremonies/login';
import { parseClusterAddress } from '../client/cluster-trust';
import { TrustedDevice } from '../client/device-trust/device';
import { approveWebSession, readWebApproval } from '../client/device-trust/web-approval';
import { LAB_SECURITY_KEY_ENV } from '../client/hardware/fido/socket-transport';
import { ProfileStore } from '../client/profiles';
import type { Profile } from '../client/profiles';
import { connectAsProfile } from '../client/session';
import { connectAsAdmin } from '../lab/cluster';
import type { LabCluster } from '../lab/cluster';
import { scriptedKeyPrompts } from '../lab/connect';
import { startLabTpm } from '../lab/tpm';
import type { webClient } from '../lab/web';
import { webApprovalQuoteData, webTokenDigest } from '../proto/web-approval';
import { WEBAPI, WEBAPI_CSRF_HEADER } from '../proto/webapi';
import { takePerfRecords } from '../client/perf';
import { median, percentile, report } from './stats';
import { breakdown, printBreakdown } from './steps';

const RUNS = Number(process.env.BENCH_WEB_APPROVALS ?? 5);
const ASSET_TAG = 'BENCH-WEB-1';
/** The design's round trips of one approval: request the link, confirm; Get, Begin, Approve. */
export const APPROVAL_HTTP_REQUESTS = 2;
/** As the client names them (its methods, proto's rpcs in lower camel case). */
export const APPROVAL_GRPC_CALLS = ['getWebSessionApproval', 'beginWebSessionApproval', 'approveWebSession'];

type Web = Awaited<ReturnType<typeof webClient>>;

export interface ConnectDevice {
  profiles: ProfileStore;
  profile: Profile;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** Keyport Connect signed in as `user` (password + the lab key), and this machine's swtpm enrolled. */
export async function prepareWebApproval(options: {
  cluster: LabCluster;
  home: string;
  keySocket: string;
  pin: string;
  password: string;
  user: string;
}): Promise<ConnectDevice> {
  const { cluster } = options;
  const tpm = await startLabTpm();
  const env = { ...tpm.env, KEYPORT_DEVICE_ASSET_TAG: ASSET_TAG };
  const previousKeys = process.env[LAB_SECURITY_KEY_ENV];
  let home: string | undefined;
  process.env[LAB_SECURITY_KEY_ENV] = options.keySocket;
  try {
    home = await mkdtemp(options.home);
    const profiles = new ProfileStore(home);
    const profile = await loginWithPassword({
      profiles,
      address: parseClusterAddress(cluster.address),
      user: options.user,
      caPin: cluster.caPin,
      keystore: 'file',
      mfa: 'key',
      device: false,
      prompts: {
        confirmCaPin: async () => false,
        password: async () => options.password,
        otpCode: () => Promise.reject(new Error('no OTP device here')),
        securityKey: scriptedKeyPrompts(options.pin),
      },
    });
    // Enrollment needs device trust on; web sessions need a device only from benchWebApproval on.
    await setDeviceTrust(cluster, 'optional');
    const admin = await connectAsAdmin(cluster);
    let token: string;
    try {
      await admin.devices.addDevice({ osType: 'linux', assetTag: ASSET_TAG });
      token = (await admin.devices.createDeviceEnrollToken({ device: ASSET_TAG, ttlSeconds: 0 })).token;
    } finally {
      admin.close();
    }
    const api = await connectAsProfile(profiles, profile);
    const device = await TrustedDevice.open({ env });
    try {
      const begun = await api.devices.beginDeviceEnrollment({
        token,
        currentDevice: false,
        device: await device.enrollmentData(),
      });
      await api.devices.completeDeviceEnrollment({
        challengeId: begun.challengeId,
        response: await device.answer(begun.challenge!),
      });
    } finally {
      await device.close();
      api.close();
    }
    return {
      profiles,
      profile,
      env,
      stop: async () => {
        await tpm.stop();
        if (home) await rm(home, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await tpm.stop();
    if (home) await rm(home, { recursive: true, force: true });
    throw error;
  } finally {
    if (previousKeys === undefined) delete process.env[LAB_SECURITY_KEY_ENV];
    else process.env[LAB_SECURITY_KEY_ENV] = previousKeys;
  }
}

async function setDeviceTrust(cluster: LabCluster, mode: 'optional' | 'required'): Promise<void> {
  const admin = await connectAsAdmin(cluster);
  try {
    const cap = JSON.parse((await admin.admin.getResource({ kind: 'cap', name: '' })).json) as {
      spec: Record<string, unknown>;
    };
    await admin.admin.createResources({
      documentsJson: [JSON.stringify({ ...cap, spec: { ...cap.spec, device_trust: { mode } } })],
      force: true,
    });
  } finally {
    admin.close();
  }
}

export async function benchWebApproval(
  cluster: LabCluster,
  web: Web,
  connect: ConnectDevice,
  signIn: () => Promise<{ cookie: string; csrf: string }>,
) {
  await setDeviceTrust(cluster, 'required');
  const { profiles, profile, env } = connect;
  let requests = 0;
  const calls: string[] = [];
  const onCall = (method: string) => calls.push(method.split('.').pop() ?? method);
  const http: Web['request'] = (method, path, options) => {
    requests++;
    return web.request(method, path, options);
  };

  /** One approval, timed from the page's request to the confirm URL's answer; the browser comes signed in. */
  const laps = {
    link: [] as number[],
    screen: [] as number[],
    approve: [] as number[],
    confirm: [] as number[],
  };
  const approve = async (browser: { cookie: string; csrf: string }) => {
    let at = performance.now();
    const lap = (into: number[]) => {
      const now = performance.now();
      into.push(now - at);
      at = now;
    };
    const asked = await http('POST', WEBAPI.deviceApproval, {
      body: {},
      headers: { Cookie: browser.cookie, [WEBAPI_CSRF_HEADER]: browser.csrf },
    });
    if (asked.status !== 200) throw new Error(`request the link: ${asked.body}`);
    const link = new URL(String(asked.json.link));
    const request = {
      id: link.searchParams.get('id') ?? '',
      token: link.searchParams.get('token') ?? '',
      redirect: link.searchParams.get('redirect') ?? '/',
    };
    lap(laps.link);
    const screen = await readWebApproval(profiles, profile, request, { env, onCall });
    if (screen.code !== asked.json.code) throw new Error('the screen shows another code than the page');
    lap(laps.screen);
    const { confirmUrl } = await approveWebSession(profiles, profile, request, { env, onCall });
    lap(laps.approve);
    const confirm = new URL(confirmUrl);
    const confirmed = await http('GET', confirm.pathname + confirm.search, {
      origin: null,
      headers: { Cookie: browser.cookie, 'Sec-Fetch-Site': 'none' },
    });
    if (confirmed.status !== 303) throw new Error(`confirm: ${confirmed.status} ${confirmed.body}`);
    lap(laps.confirm);
  };

  const api = await connectAsProfile(profiles, profile);
  const device = await TrustedDevice.open({ env });
  const parts = { quote: [] as number[], grpc: [] as number[], http: [] as number[] };
  /** The floor's sample: one TPM quote, the ceremony's calls as bare ones. */
  const floorOnce = async () => {
    const start = performance.now();
    for (let i = 0; i < APPROVAL_GRPC_CALLS.length; i++)
      if ((await api.health()) !== 'SERVING') throw new Error('not serving');
    const called = performance.now();
    for (let i = 0; i < APPROVAL_HTTP_REQUESTS; i++)
      if ((await web.request('GET', '/')).status !== 200) throw new Error('index.html');
    const requested = performance.now();
    await device.answer({
      nonce: webApprovalQuoteData(randomBytes(32), webTokenDigest(randomBytes(32).toString('base64url'))),
      credentialBlob: Buffer.alloc(0),
      encryptedSecret: Buffer.alloc(0),
    });
    const end = performance.now();
    parts.grpc.push(called - start);
    parts.http.push(requested - called);
    parts.quote.push(end - requested);
    return end - start;
  };
  const runs: number[] = [];
  const floor: number[] = [];
  const perRun: { http: number; grpc: string[] }[] = [];
  let steps;
  try {
    for (let i = 0; i < RUNS + 1; i++) {
      const browser = await signIn();
      requests = 0;
      calls.length = 0;
      if (i === 1) takePerfRecords();
      const start = performance.now();
      await approve(browser);
      const elapsed = performance.now() - start;
      perRun.push({ http: requests, grpc: [...calls] });
      const session = await web.request('GET', WEBAPI.session, { headers: { Cookie: browser.cookie } });
      if ((session.json.device as { trusted?: boolean } | undefined)?.trusted !== true)
        throw new Error(`the approved session is not trusted: ${session.body}`);
      // The first run warms the paths up (both sides, the TPM); every run's round trips are counted.
      // Alternated with the floor's samples, so the machine's other load hits both alike.
      const sample = await floorOnce();
      if (i === 0) continue;
      runs.push(elapsed);
      floor.push(sample);
    }
    steps = breakdown(takePerfRecords());
  } finally {
    await device.close();
    api.close();
  }

  const expected = APPROVAL_GRPC_CALLS.join(',');
  const offDesign = perRun.filter((r) => r.http !== APPROVAL_HTTP_REQUESTS || r.grpc.join(',') !== expected);
  const ms = (samples: number[]) => Number(median(samples).toFixed(3));
  printBreakdown('web-session approval, Keyport Connect', steps);
  const line = report(
    'web-session approval (link, screen, TPM quote, confirm)',
    runs,
    '1 TPM quote + 3 gRPC health checks on an open channel + 2 bare HTTPS requests',
    floor,
    {
      measured_p50_ms: ms(runs),
      measured_p99_ms: Number(percentile(runs, 99).toFixed(3)),
      http_requests_per_approval: perRun[0]?.http,
      grpc_calls_per_approval: perRun[0]?.grpc,
      round_trip_target: { http: APPROVAL_HTTP_REQUESTS, grpc: APPROVAL_GRPC_CALLS },
      runs_off_design: offDesign.length,
      measured_parts_median_ms: {
        request_link_https: ms(laps.link.slice(1)),
        connect_screen: ms(laps.screen.slice(1)),
        connect_authorize: ms(laps.approve.slice(1)),
        confirm_https: ms(laps.confirm.slice(1)),
      },
      steps,
      floor_parts_median_ms: {
        three_health_checks: ms(parts.grpc),
        two_https_requests: ms(parts.http),
        tpm_quote: ms(parts.quote),
      },
    },
  );
  if (offDesign.length > 0)
    console.error(`web approval: round trips off the design: ${JSON.stringify(offDesign[0])}`);
  return { ...line, round_trips_as_designed: offDesign.length === 0 };
}
