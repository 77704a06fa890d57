import { describe, expect, it } from 'vitest';
import { splitAddr } from './options';

describe('splitAddr', () => {
  it('splits a DNS name, an IPv4 address and a bracketed IPv6 address from the port', () => {
    expect(splitAddr('node-1.example.com:22')).toEqual({ host: 'node-1.example.com', port: '22' });
    expect(splitAddr('127.0.0.1:2222')).toEqual({ host: '127.0.0.1', port: '2222' });
    expect(splitAddr('[::1]:22')).toEqual({ host: '::1', port: '22' });
  });

  it('refuses a host ssh would read as an option, and anything else that is not HOST:PORT', () => {
    for (const addr of ['-oProxyCommand=touch /tmp/x:22', '-p:22', 'host', 'host:', ':22', 'a b:22', 'h:0']) {
      expect(() => splitAddr(addr), addr).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    }
  });
});
