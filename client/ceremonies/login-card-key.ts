// The hardware-key (PIV) side of a login (client/ceremonies/login.ts): the private-key policy the session
// key must meet (step 1's, a refused Login's, and for passwordless the one the cluster asked last time) and,
// once it is more than none, the key prepared on the card, which Login then carries with its attestation
// instead of a software key. The seed's two lines are said when the move to the card was not expected.
import {
  combinePolicies,
  isPrivateKeyPolicy,
  policySatisfies,
} from '../../proto/resources/private-key-policy';
import type { PrivateKeyPolicy } from '../../proto/resources/private-key-policy';
import type { HardwareKeyAttestation } from '../../proto/gen/keyport/v1/auth';
import type { PerfSteps } from '../perf';
import type { HardwareKeyRecord, TrustedCluster } from '../profiles';
import type { SessionSigner } from '../keystore';
import {
  hardwareKeyRecord,
  loginAttestation,
  meetsPolicy,
  prepareCardSessionKey,
  refusedKeyPolicy,
  reloginNotices,
} from './hardware-key';
import type { CardSessionKey, HardwareKeyLoginOptions, StepOneKeyPolicy } from './hardware-key';

export interface LoginCardKeyOptions {
  hardwareKey?: HardwareKeyLoginOptions;
  notice?(line: string): void;
  perf: PerfSteps;
  /** The cluster as trusted: the policy it asked last time. */
  trusted: TrustedCluster;
  /**
   * Passwordless: step 1 knows only the cap's policy (no user yet), so the one this cluster asked last time
   * counts too, and a second passwordless login goes to the card at once, without a refusal.
   */
  rememberLastPolicy: boolean;
}

export class LoginCardKey {
  private requiredNow: PrivateKeyPolicy = 'none';
  private card: CardSessionKey | undefined;
  /** The policy a refused Login named: the login starts again from step 1 with the card's key. */
  private refusedPolicy: PrivateKeyPolicy | undefined;
  private readonly lastTime: PrivateKeyPolicy;

  constructor(private readonly options: LoginCardKeyOptions) {
    this.lastTime = rememberedPolicy(options.trusted);
  }

  /** The policy the last step 1 (with any refusal) required: the issued session meets it. */
  get required(): PrivateKeyPolicy {
    return this.requiredNow;
  }

  /** The policy the session key must meet once step 1 said `stepOne`. */
  requiredAfter(stepOne: StepOneKeyPolicy | undefined): PrivateKeyPolicy {
    return combinePolicies(
      combinePolicies(stepOne?.policy ?? 'none', this.refusedPolicy ?? 'none'),
      this.options.rememberLastPolicy ? this.lastTime : 'none',
    );
  }

  /** After step 1: the card's key when the policy requires one (then no software key was written). */
  async afterStepOne(stepOne: StepOneKeyPolicy | undefined): Promise<void> {
    this.requiredNow = this.requiredAfter(stepOne);
    const expected = this.refusedPolicy === undefined && policySatisfies(this.lastTime, this.requiredNow);
    await this.useCardKey(this.requiredNow, stepOne?.slot, expected);
  }

  /**
   * Login refused for the key's policy (a cluster that did not say it in step 1): once, the card's key is
   * prepared and true returned, for a login from step 1 (a fresh challenge; the second factor asked anew).
   */
  async afterRefusal(error: unknown): Promise<boolean> {
    const policy = refusedKeyPolicy(error);
    if (policy === undefined || this.refusedPolicy !== undefined || meetsPolicy(this.card, policy))
      return false;
    this.refusedPolicy = policy;
    await this.useCardKey(policy, undefined, false);
    return true;
  }

  /** The card key's signer, when Login goes with it. */
  get signer(): SessionSigner | undefined {
    return this.card?.prepared.signer;
  }

  /** Login's attestation field, with the card's key. */
  attestation(): { hardwareKeyAttestation?: HardwareKeyAttestation } {
    return this.card ? { hardwareKeyAttestation: loginAttestation(this.card) } : {};
  }

  /** What the profile keeps of the card's key, when the session has one. */
  record(): HardwareKeyRecord | undefined {
    return this.card && hardwareKeyRecord(this.card);
  }

  async close(): Promise<void> {
    await this.card?.session.close().catch(() => {});
  }

  /** Moves to the card's key for `policy` (said once, as the seed says it, unless expected). */
  private async useCardKey(policy: PrivateKeyPolicy, clusterSlot: string | undefined, expected: boolean) {
    if (policy === 'none' || meetsPolicy(this.card, policy)) return;
    if (!expected) for (const line of reloginNotices(policy)) this.options.notice?.(line);
    await this.card?.session.close();
    this.card = undefined;
    this.card = await prepareCardSessionKey(this.options.hardwareKey, policy, clusterSlot);
    this.options.perf.step('hardware key');
  }
}

/** The private-key policy the trusted cluster asked last time ('none' when it asked none, or an unknown one). */
function rememberedPolicy(trusted: TrustedCluster): PrivateKeyPolicy {
  const policy = trusted.privateKeyPolicy;
  return policy !== undefined && isPrivateKeyPolicy(policy) ? policy : 'none';
}
