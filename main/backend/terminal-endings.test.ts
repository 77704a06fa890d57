// Why a terminal ended, from ssh's exit status and its own log lines (as OpenSSH 9.2 writes them with -E).
import { describe, expect, it } from 'vitest';
import { closedEnding, sshEnding } from './terminal-endings';

const place = { cluster: 'example:3025', node: 'node-1', addr: '10.0.0.5:22', login: 'dana' };

describe('sshEnding', () => {
  it('passes the remote exit code through', () => {
    expect(sshEnding('t', place, { exitCode: 0 }, '')).toEqual({
      id: 't',
      reason: 'exited',
      exitCode: 0,
      message: 'The session on node-1 ended.',
    });
    expect(sshEnding('t', place, { exitCode: 130 }, '')).toMatchObject({ reason: 'exited', exitCode: 130 });
  });

  it.each([
    ['Host key verification failed.', 'hostNotTrusted', /host certificate from example:3025's host CA/],
    ['dana@10.0.0.5: Permission denied (publickey).', 'accessDenied', /refused you as "dana"/],
    ['ssh: connect to host 10.0.0.5 port 22: Connection refused', 'serverDown', /is not answering/],
    ['Connection closed by 10.0.0.5 port 22', 'connectionClosed', /was closed/],
    ['', 'connectionClosed', /was closed/],
  ])('reads %j as %s', (log, reason, message) => {
    const ending = sshEnding('t', place, { exitCode: 255 }, log && `debug1: a line before\n${log}\n`);
    expect(ending).toMatchObject({ reason, exitCode: 255 });
    expect(ending.message).toMatch(message);
  });

  it('shows ssh’s last line for anything else, without local paths', () => {
    const ending = sshEnding(
      't',
      place,
      { exitCode: 255 },
      'Bad owner or permissions on /home/dana/.keyport/terminal-x/config\n',
      ['/home/dana/.keyport/terminal-x', '/home/dana/.keyport'],
    );
    expect(ending).toMatchObject({ reason: 'failed' });
    expect(ending.message).toBe(
      'ssh could not keep the session to node-1: Bad owner or permissions on …/config',
    );
  });

  it('says who closed a session that did not end by itself', () => {
    expect(closedEnding('t', place, 'signedOut').message).toMatch(/^Signed out of example:3025/);
    expect(closedEnding('t', place, 'closed')).toEqual({
      id: 't',
      reason: 'closed',
      message: 'You closed this session.',
    });
  });
});
