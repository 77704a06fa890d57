import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { x509 } from '../../auth/ca/x509-library';
import { YUBICO_OID } from './attestation';
import { generateApdu, harness } from './card.test-support';

const extension = (certificate: x509.X509Certificate, oid: string) =>
  Buffer.from(certificate.getExtension(oid)?.value ?? new ArrayBuffer(0)).toString('hex');

describe('virtual PIV card: attestation (YubiKey ATTEST, slot f9)', () => {
  it('attests a generated key with a certificate from f9 that chains to the lab root', async () => {
    const h = await harness({ serial: 0x00c0ffee });
    await h.select();
    await h.authenticate();
    const generated = await h.send(generateApdu(0x9a, 2, 3));
    const attestation = await h.sendAll('00f99a0000');
    expect(attestation.sw).toBe(0x9000);
    expect(attestation.data.length).toBeGreaterThan(256); // it came through GET RESPONSE

    const leaf = new X509Certificate(Buffer.from(attestation.data));
    const device = new X509Certificate(h.state.attestation.device.certPem);
    const root = new X509Certificate(h.state.attestation.root.certPem);
    expect(leaf.checkIssued(device)).toBe(true);
    expect(leaf.verify(device.publicKey)).toBe(true);
    expect(device.checkIssued(root)).toBe(true);
    expect(device.verify(root.publicKey)).toBe(true);
    expect(device.ca).toBe(true);
    expect(leaf.subject).toBe('CN=YubiKey PIV Attestation 9a');
    expect([leaf.validFrom, leaf.validTo]).toEqual([device.validFrom, device.validTo]);

    // The attested key is the key GENERATE answered with.
    const point = Buffer.from(generated.data.subarray(5));
    const leafPoint = leaf.publicKey.export({ type: 'spki', format: 'der' }).subarray(-65);
    expect(leafPoint).toEqual(point);
    expect(createPublicKey(h.state.slots['9a']?.privateKeyPem as string).export({ format: 'jwk' })).toEqual(
      leaf.publicKey.export({ format: 'jwk' }),
    );
  });

  it("carries Yubico's extensions: firmware, serial, PIN and touch policy, form factor", async () => {
    const h = await harness({ serial: 0x00c0ffee });
    await h.select();
    await h.authenticate();
    await h.send(generateApdu(0x9c, 3, 2));
    const attestation = await h.sendAll('00f99c0000');
    const leaf = new x509.X509Certificate(attestation.data);
    expect(extension(leaf, YUBICO_OID.firmware)).toBe('050701');
    expect(extension(leaf, YUBICO_OID.serial)).toBe('020400c0ffee');
    expect(extension(leaf, YUBICO_OID.policy)).toBe('0302');
    expect(extension(leaf, YUBICO_OID.formFactor)).toBe('01');
    expect(leaf.serialNumber.length).toBe(32);
  });

  it('answers 6A88 for an empty slot and 6A86 for f9 itself or a non-key slot; needs no PIN', async () => {
    const h = await harness();
    await h.select();
    expect((await h.send('00f99a0000')).sw).toBe(0x6a88);
    expect((await h.send('00f9f90000')).sw).toBe(0x6a86);
    expect((await h.send('00f99b0000')).sw).toBe(0x6a86);
    expect((await h.send('00f99a0100')).sw).toBe(0x6a86);
  });

  it('keeps the f9 certificate readable as object 5FFF01, in the PIV certificate layout', async () => {
    const h = await harness();
    await h.select();
    const answer = await h.sendAll('00cb3fff055c035fff01');
    expect(answer.sw).toBe(0x9000);
    const der = new X509Certificate(h.state.attestation.device.certPem).raw;
    const hex = Buffer.from(answer.data).toString('hex');
    expect(hex).toContain(der.toString('hex'));
    expect(hex.endsWith('710100fe00')).toBe(true);
  });

  it('makes a different serial for every attestation, over the same key', async () => {
    const h = await harness();
    await h.select();
    await h.authenticate();
    await h.send(generateApdu(0x9e));
    const first = new X509Certificate(Buffer.from((await h.sendAll('00f99e0000')).data));
    const second = new X509Certificate(Buffer.from((await h.sendAll('00f99e0000')).data));
    expect(first.serialNumber).not.toBe(second.serialNumber);
    const fingerprint = (c: X509Certificate) =>
      createHash('sha256')
        .update(c.publicKey.export({ type: 'spki', format: 'der' }))
        .digest('hex');
    expect(fingerprint(first)).toBe(fingerprint(second));
  });
});
