// @vitest-environment jsdom
import '../../testing/setup';
import { act, render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { DeviceTrustView, EnrolledDeviceView, Result } from '../../../../preload/contract';
import { cluster, deferred, deviceTrust, fail, fakeKeyport, ok, profile } from '../../testing/fakeKeyport';
import type { FakeState } from '../../testing/fakeKeyport';
import { App } from '../App';

const TOKEN = 'q4V9fK2m-Hx_7yZ0aB3cD5eF6gH8iJ1kL2mN3oP4qR5';

async function openAccount(state: FakeState = {}) {
  state.clusters ??= [cluster()];
  if (!('profile' in state)) state.profile = profile();
  const fake = fakeKeyport(state);
  const user = userEvent.setup();
  render(<App api={fake.api} />);
  const section = await screen.findByRole('region', { name: 'This device' });
  await within(section).findByText('Device trust', { selector: 'dt' });
  return { fake, user, section };
}

function fact(section: HTMLElement, name: string): HTMLElement {
  return within(section).getByText(name, { selector: 'dt' }).nextElementSibling as HTMLElement;
}

const enrolled: EnrolledDeviceView = {
  assetTag: 'LAPTOP-42',
  osType: 'linux',
  owner: 'alice',
  enrolled: true,
  enrolledMs: 1_700_000_000_000,
};

describe('This device (Account screen)', () => {
  it.each<[Partial<DeviceTrustView>, string]>([
    [{ state: 'not_registered' }, 'Not registered'],
    [{ state: 'registered' }, 'Registered, not enrolled'],
    [{ state: 'enrolled', registered: enrolled }, 'Enrolled'],
    [{ state: 'enrolled', trustedInSession: true, registered: enrolled }, 'Trusted in this session'],
    [{ state: 'locked' }, 'Locked by an admin'],
    [{ state: 'other_tpm' }, 'Enrolled with another TPM'],
  ])('shows the state %j as "%s"', async (overrides, label) => {
    const state = { deviceTrust: deviceTrust(overrides) };
    const { fake, section } = await openAccount(state);
    expect(await within(section).findByText(label, { selector: 'dd' })).toBeInTheDocument();
    expect(fact(section, 'Asset tag')).toHaveTextContent('LAPTOP-42');
    expect(fact(section, 'Cluster policy')).toHaveTextContent('Optional');
    expect(fake.callsTo('device.status')).toEqual([{ cluster: 'auth.example.com:3025' }]);
    const form = within(section).queryByRole('form', { name: 'Enroll this device' });
    if (overrides.state === 'registered' || overrides.state === 'not_registered') {
      expect(form).toBeInTheDocument();
    } else {
      expect(form).not.toBeInTheDocument();
    }
    if (overrides.registered) expect(fact(section, 'Enrolled by')).toHaveTextContent('alice');
  });

  it('shows why the TPM cannot be used, and offers no enrollment', async () => {
    const { section } = await openAccount({
      deviceTrust: deviceTrust({ tpmProblem: 'This machine has no TPM that Keyport can use.' }),
    });
    expect(
      await within(section).findByText(/This device cannot be enrolled: This machine has no TPM/),
    ).toBeInTheDocument();
    expect(within(section).queryByRole('form', { name: 'Enroll this device' })).not.toBeInTheDocument();
  });

  it('says device trust is off, and offers no enrollment', async () => {
    const { section } = await openAccount({
      deviceTrust: deviceTrust({ mode: 'off', state: 'not_registered' }),
    });
    expect(await within(section).findByText('Device trust is off on this cluster.')).toBeInTheDocument();
    expect(within(section).queryByRole('form', { name: 'Enroll this device' })).not.toBeInTheDocument();
  });

  it('enrolls with a pasted token: the field is cleared as it leaves, then it says to sign in again', async () => {
    const state: FakeState = { deviceTrust: deviceTrust() };
    const { fake, user, section } = await openAccount(state);
    const answer = deferred<Result<EnrolledDeviceView>>();
    fake.respond('device.enroll', () => answer.promise);
    const field = within(section).getByLabelText('Enrollment token');
    expect(field).toHaveAccessibleDescription(
      'Paste the enrollment token an admin made for this device (asset tag LAPTOP-42).',
    );
    await user.type(field, ` ${TOKEN} `);
    await user.click(within(section).getByRole('button', { name: 'Enroll with token' }));
    expect(fake.callsTo('device.enroll')).toEqual([{ cluster: 'auth.example.com:3025', token: TOKEN }]);
    // The token left with the call: nothing in the page holds it any more.
    expect(field).toHaveValue('');
    expect(document.body.innerHTML).not.toContain(TOKEN);
    expect(within(section).getByRole('button', { name: 'Enroll with token' })).toBeDisabled();
    state.deviceTrust = deviceTrust({ state: 'enrolled', registered: enrolled });
    await act(async () => answer.resolve(ok(enrolled)));
    expect(await within(section).findByRole('status')).toHaveTextContent(
      'This device (LAPTOP-42) is enrolled.',
    );
    expect(await within(section).findByText('Enrolled', { selector: 'dd' })).toBeInTheDocument();
    expect(
      within(section).getByText('This device is enrolled. Sign in again to get a trusted session.'),
    ).toBeInTheDocument();
    await user.click(within(section).getByRole('button', { name: 'Sign in again' }));
    expect(await screen.findByRole('heading', { level: 2, name: 'Sign in to example' })).toBeInTheDocument();
  });

  it('checks the token before sending it', async () => {
    const { fake, user, section } = await openAccount({ deviceTrust: deviceTrust() });
    await user.click(within(section).getByRole('button', { name: 'Enroll with token' }));
    const field = within(section).getByLabelText('Enrollment token');
    expect(within(section).getByRole('alert')).toHaveTextContent('Paste the enrollment token');
    expect(field).toHaveAttribute('aria-invalid', 'true');
    expect(field).toHaveFocus();
    await user.type(field, 'keyport device enroll --token=abc');
    await user.click(within(section).getByRole('button', { name: 'Enroll with token' }));
    expect(within(section).getByRole('alert')).toHaveTextContent('This is not an enrollment token');
    expect(fake.callsTo('device.enroll')).toEqual([]);
  });

  it('offers self-enrollment only when the roles allow it', async () => {
    const { fake, user, section } = await openAccount({
      deviceTrust: deviceTrust({ state: 'not_registered', selfEnrollmentAllowed: true }),
    });
    fake.respond('device.enroll', ok(enrolled));
    await user.click(await within(section).findByRole('button', { name: 'Enroll with my admin role' }));
    expect(fake.callsTo('device.enroll')).toEqual([{ cluster: 'auth.example.com:3025' }]);
  });

  it('has no self-enrollment button without the role', async () => {
    const { section } = await openAccount({ deviceTrust: deviceTrust() });
    expect(within(section).queryByRole('button', { name: 'Enroll with my admin role' })).toBeNull();
  });

  it.each<[string, ReturnType<typeof fail>, RegExp]>([
    [
      'a token that is invalid, used or for another device',
      fail('ACCESS_DENIED', 'The device enrollment token is invalid or was already used', {
        fieldPath: 'token',
      }),
      /^Ask an admin to register this device \(asset tag LAPTOP-42\) and give you an enrollment token\.$/,
    ],
    [
      'an expired token',
      fail('EXPIRED', 'The device enrollment token has expired', { fieldPath: 'token' }),
      /^This enrollment token has expired: ask for a new one\.$/,
    ],
    [
      'a TPM that is not the one whose keys were sent',
      fail('ACCESS_DENIED', 'The TPM did not activate the enrollment credential', {
        fieldPath: 'response.activated_secret',
      }),
      /^This TPM is not the one enrolled for this device \(asset tag LAPTOP-42\)/,
    ],
    [
      'no TPM helper',
      fail('UNAVAILABLE', 'The TPM helper is not installed: keyport-tpm-helper was not found.'),
      /^The TPM helper is not installed/,
    ],
    [
      'an enrolled device',
      fail('ALREADY_EXISTS', 'Device LAPTOP-42 is already enrolled.'),
      /^This device is already enrolled\./,
    ],
  ])('says what to do next after %s', async (_, refusal, message) => {
    const { fake, user, section } = await openAccount({ deviceTrust: deviceTrust() });
    fake.respond('device.enroll', refusal as Result<EnrolledDeviceView>);
    await user.type(within(section).getByLabelText('Enrollment token'), TOKEN);
    await user.click(within(section).getByRole('button', { name: 'Enroll with token' }));
    expect((await within(section).findByRole('alert')).textContent).toMatch(message);
    if (refusal.error.details.fieldPath === 'token') {
      expect(within(section).getByLabelText('Enrollment token')).toHaveFocus();
    }
  });

  it("words a TPM that went missing since the status with the backend's message", async () => {
    const state: FakeState = { deviceTrust: deviceTrust({ selfEnrollmentAllowed: true }) };
    const { fake, user, section } = await openAccount(state);
    fake.respond('device.enroll', fail('PRECONDITION_FAILED', 'no TPM'));
    await user.click(within(section).getByRole('button', { name: 'Enroll with my admin role' }));
    expect(await within(section).findByRole('alert')).toHaveTextContent('no TPM');
  });

  it('offers the enrollment from a DEVICE_TRUST_REQUIRED refusal anywhere in the app', async () => {
    const { fake, user } = await openAccount({ deviceTrust: deviceTrust(), devices: [] });
    fake.respond('mfa.add', fail('DEVICE_TRUST_REQUIRED', 'Adding an MFA device needs a trusted device.'));
    await user.click(screen.getByRole('button', { name: 'Add security key' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('This needs a trusted device. Enroll this device, then sign in again');
    await user.click(within(alert).getByRole('button', { name: 'Enroll this device' }));
    expect(screen.getByRole('heading', { level: 3, name: 'This device' })).toHaveFocus();
  });
});

describe('the TPM progress prompt', () => {
  it('shows while the backend works with the TPM, offers nothing to press, and goes when closed', async () => {
    const { fake } = await openAccount({ deviceTrust: deviceTrust() });
    act(() =>
      fake.emit('onPrompt', { id: 'prompt-7', kind: 'progress', message: "Working with this device's TPM…" }),
    );
    const dialog = screen.getByRole('dialog', { name: 'Device trust' });
    expect(within(dialog).getByRole('status')).toHaveTextContent("Working with this device's TPM…");
    expect(within(dialog).queryByRole('button')).toBeNull();
    act(() => fake.emit('onPromptClosed', { id: 'prompt-7', reason: 'finished' }));
    expect(screen.queryByRole('dialog')).toBeNull();
  });
});
