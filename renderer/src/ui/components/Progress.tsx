import { useDelayedFlag } from '../../services/hooks';

interface ProgressProps {
  /** True while the wait lasts; the text shows only once it has lasted 300 ms. */
  active: boolean;
  label: string;
}

/**
 * A progress line with a reserved height, so that nothing moves when it appears. Announced politely.
 */
export function Progress({ active, label }: ProgressProps) {
  const shown = useDelayedFlag(active);
  return (
    <p className="progress" aria-live="polite">
      {shown && (
        <>
          <span className="spinner" aria-hidden="true" />
          {label}
        </>
      )}
    </p>
  );
}
