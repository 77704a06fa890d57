// The choice of second factor a password sign-in offers where the cluster has both a security key and a
// one-time code (the login screen and the relogin dialog show the same group).
import { useId } from 'react';

export type SecondFactor = 'key' | 'otp';

const FACTORS: ReadonlyArray<readonly [SecondFactor, string]> = [
  ['key', 'Security key'],
  ['otp', 'One-time code'],
];

export function SecondFactorChoice({
  name,
  value,
  onChange,
}: {
  name: string;
  value: SecondFactor;
  onChange: (factor: SecondFactor) => void;
}) {
  const legend = useId();
  return (
    <fieldset className="choice" role="radiogroup" aria-labelledby={legend}>
      <legend id={legend}>Second factor</legend>
      {FACTORS.map(([factor, label]) => (
        <label className="radio" key={factor}>
          <input
            type="radio"
            name={name}
            value={factor}
            checked={value === factor}
            onChange={() => onChange(factor)}
          />
          {label}
        </label>
      ))}
    </fieldset>
  );
}
