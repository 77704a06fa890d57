import { Metadata, status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ERROR_METADATA_KEY, errorCodes, fromServiceError, KeyportError, toStatusObject } from './errors';

function asServiceError(error: KeyportError): ServiceError {
  const object = toStatusObject(error);
  return Object.assign(new Error(object.details), {
    code: object.code ?? status.UNKNOWN,
    details: object.details ?? '',
    metadata: object.metadata ?? new Metadata(),
  });
}

describe('the error contract', () => {
  it.each(errorCodes)('carries %s across the wire with its fields', (code) => {
    const sent = new KeyportError(code, `message for ${code}`, {
      fieldPath: 'spec.x[0]',
      lockedUntilMs: 42,
      resolvableByRelogin: true,
    });
    const received = fromServiceError(asServiceError(sent));
    expect(received.code).toBe(code);
    expect(received.message).toBe(`message for ${code}`);
    expect(received.fields).toEqual({ fieldPath: 'spec.x[0]', lockedUntilMs: 42, resolvableByRelogin: true });
  });

  it('carries the required private-key policy of PRIVATE_KEY_POLICY_NOT_MET', () => {
    const sent = new KeyportError(
      'PRIVATE_KEY_POLICY_NOT_MET',
      'Unmet private key policy "hardware_key_touch".',
      {
        privateKeyPolicy: 'hardware_key_touch',
        resolvableByRelogin: true,
      },
    );
    const received = fromServiceError(asServiceError(sent));
    expect(received.code).toBe('PRIVATE_KEY_POLICY_NOT_MET');
    expect(received.fields).toEqual({ privateKeyPolicy: 'hardware_key_touch', resolvableByRelogin: true });
  });

  it('falls back to the gRPC status when the detail is garbled', () => {
    const metadata = new Metadata();
    metadata.set(ERROR_METADATA_KEY, Buffer.from([0xff, 0xff, 0xff]));
    const error = Object.assign(new Error('x'), {
      code: status.UNAVAILABLE,
      details: 'connect failed',
      metadata,
    });
    expect(fromServiceError(error).code).toBe('UNAVAILABLE');
  });

  it('reports a failure without any detail as INTERNAL, keeping the text', () => {
    const error = Object.assign(new Error('boom'), {
      code: status.UNKNOWN,
      details: 'boom',
      metadata: new Metadata(),
    });
    expect(fromServiceError(error)).toMatchObject({ code: 'INTERNAL', message: 'boom' });
  });
});
