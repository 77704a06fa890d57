// The handler table's binding, one rule for every method: the argument validated against the contract's
// schema before anything else (invariant 3; bad input changes nothing, invariant 6), the handler run
// through retryWithRelogin (main/backend/relogin.ts) as the profile of the cluster the argument names, and
// the outcome as a Result whose error is a ContractError (invariant 1).
import type { z } from 'zod';
import { methodSchemas } from '../../preload/contract';
import type { ContractError, MethodName, MethodResults, Result } from '../../preload/contract';
import type { Relogin } from './relogin';
import { toContractError } from './views';

/**
 * The methods that sign in (or out): their failures belong to the login form (or to the relogin the person
 * asked for), so no relogin starts from them. Every other handler runs through retryWithRelogin.
 */
export const SIGN_IN_METHODS: ReadonlySet<MethodName> = new Set([
  'auth.login',
  'auth.loginPasswordless',
  'auth.loginSso',
  'auth.logout',
  'auth.signInAgain',
]);

/** The cluster a method's argument names (`cluster`, or `address`), undefined for the current profile. */
function clusterOf(argument: unknown): string | undefined {
  if (typeof argument !== 'object' || argument === null) return undefined;
  const named = argument as { cluster?: unknown; address?: unknown };
  if (typeof named.cluster === 'string') return named.cluster;
  return typeof named.address === 'string' ? named.address : undefined;
}

/** The first schema issue as INVALID_ARGUMENT, naming the field (an unexpected key names that key). */
export function invalidArgument(error: z.ZodError): ContractError {
  const issue = error.issues[0];
  const path = [...(issue?.path ?? [])].map(String);
  if (issue?.code === 'unrecognized_keys' && issue.keys[0]) path.push(issue.keys[0]);
  return {
    code: 'INVALID_ARGUMENT',
    message:
      issue?.code === 'unrecognized_keys'
        ? `Unexpected field "${path.join('.')}".`
        : (issue?.message ?? 'Invalid argument.'),
    details: { fieldPath: path.length > 0 ? path.join('.') : 'argument' },
  };
}

/**
 * One handler: the argument validated, then `run` through retryWithRelogin as the profile of the
 * argument's cluster (the current one without), so an error a relogin resolves signs in again and runs
 * the call once more, whichever handler it is. The sign-in methods are the exception (SIGN_IN_METHODS).
 */
export function handlerBinder(relogin: Pick<Relogin, 'retryWithRelogin'>) {
  return function bind<M extends MethodName>(
    method: M,
    run: (argument: z.output<(typeof methodSchemas)[M]>) => Promise<MethodResults[M]>,
  ): (argument?: unknown) => Promise<Result<MethodResults[M]>> {
    return async (argument) => {
      const parsed = methodSchemas[method].safeParse(argument);
      if (!parsed.success) return { ok: false, error: invalidArgument(parsed.error) };
      const data = parsed.data as z.output<(typeof methodSchemas)[M]>;
      try {
        const value = SIGN_IN_METHODS.has(method)
          ? await run(data)
          : await relogin.retryWithRelogin(clusterOf(data), () => run(data));
        return { ok: true, value };
      } catch (error) {
        return { ok: false, error: toContractError(error) };
      }
    };
  };
}
