import { render } from '@testing-library/react';
import type { ReactNode } from 'react';
import type { KeyportApi } from '../../../preload/contract';
import { KeyportContext } from '../services/KeyportContext';
import { PromptsHost } from '../ui/Prompts/PromptsHost';

/** Renders a screen as the app does: under the API's context, with the prompts host beside it. */
export function renderWithKeyport(api: KeyportApi, ui: ReactNode) {
  return render(
    <KeyportContext value={api}>
      <main tabIndex={-1}>{ui}</main>
      <PromptsHost />
    </KeyportContext>,
  );
}
