// CPU time of other processes on this machine, from /proc (utime + stime, in clock ticks): a keyport-auth
// replica, and the lab PostgreSQL with every backend it runs or has reaped.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const CLK_TCK = 100;

/** The fields of /proc/PID/stat after the command name (the name may hold spaces and parentheses). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of `pid`, in ms. */
export function cpuMs(pid: number): number {
  const fields = statFields(pid);
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/**
 * utime + stime of the lab PostgreSQL whose directory is `dir` (lab/postgres.ts): the postmaster, its live
 * backends, and the ones it reaped, in ms; 0 without a directory (SQLite).
 */
export function postgresCpuMs(dir: string | undefined): number {
  if (!dir) return 0;
  const postmaster = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const own = statFields(postmaster);
  // utime, stime, cutime, cstime: fields 14–17 of /proc/PID/stat (11–14 after the command).
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = statFields(Number(entry));
      if (Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return (ticks * 1000) / CLK_TCK;
}
