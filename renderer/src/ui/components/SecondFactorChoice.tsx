// The choice of second factor a password sign-in offers where the cluster has both a security key and a
// one-time code (the login screen and the relogin dialog show the same group).
import { useId } from 'react';

export type SecondFactor = 'key' | 'otp';

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
      <label className="radio">
        <input
          type="radio"
          name={name}
          value="key"
          checked={value === 'key'}
          onChange={() => onChange('key')}
        />
        Security key
      </label>
      <label className="radio">
        <input
          type="radio"
          name={name}
          value="otp"
          checked={value === 'otp'}
          onChange={() => onChange('otp')}
        />
        One-time code
      </label>
    </fieldset>
  );
}
