// @vitest-environment jsdom
import '../../testing/setup';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { PromptAnswer } from '../../../../preload/contract';
import { TextFieldPrompt } from './PromptFrames';
import type { TextFieldPromptProps } from './PromptFrames';

function renderPrompt(overrides: Partial<TextFieldPromptProps> = {}) {
  const answer = vi.fn<(value: PromptAnswer) => void>();
  const cancel = vi.fn();
  const validate = vi.fn((value: string) => (value.length < 3 ? 'Too short.' : null));
  const props: TextFieldPromptProps = {
    title: 'Name it',
    message: 'Give it a name.',
    label: 'Name',
    submitLabel: 'Save',
    input: { type: 'text', autoComplete: 'off', maxLength: 10 },
    validate,
    toAnswer: (value) => ({ kind: 'deviceName', name: value.toUpperCase() }),
    busy: false,
    error: null,
    answer,
    cancel,
    ...overrides,
  };
  const view = render(<TextFieldPrompt {...props} />);
  return { ...view, props, answer, cancel, validate, user: userEvent.setup() };
}

describe('TextFieldPrompt', () => {
  it('is a dialog named by its title, with the field labelled, focused and given its input attributes', () => {
    renderPrompt();
    expect(screen.getByRole('dialog', { name: 'Name it' })).toBeInTheDocument();
    expect(screen.getByText('Give it a name.')).toBeInTheDocument();
    const field = screen.getByRole('textbox', { name: 'Name' });
    expect(field).toHaveFocus();
    expect(field).toHaveAttribute('autocomplete', 'off');
    expect(field).toHaveAttribute('maxlength', '10');
    expect(field).not.toHaveAttribute('aria-invalid');
    expect(field).not.toHaveAttribute('aria-describedby');
  });

  it('shows the problem validate finds, marks the field invalid and described by it, and sends nothing', async () => {
    const { answer, validate, user } = renderPrompt();
    await user.keyboard('ab{Enter}');
    expect(validate).toHaveBeenCalledWith('ab');
    const field = screen.getByRole('textbox', { name: 'Name' });
    expect(field).toHaveAttribute('aria-invalid', 'true');
    expect(field).toHaveAccessibleDescription('Too short.');
    expect(screen.getByRole('alert')).toHaveTextContent('Too short.');
    expect(answer).not.toHaveBeenCalled();
  });

  it('answers with toAnswer of the value once it passes, and clears the problem', async () => {
    const { answer, user } = renderPrompt();
    await user.keyboard('ab{Enter}');
    await user.keyboard('c');
    await user.click(screen.getByRole('button', { name: 'Save' }));
    expect(answer).toHaveBeenCalledExactlyOnceWith({ kind: 'deviceName', name: 'ABC' });
    const field = screen.getByRole('textbox', { name: 'Name' });
    expect(field).not.toHaveAttribute('aria-invalid');
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('describes the field by its hint, and by the hint and the problem together', async () => {
    const { user } = renderPrompt({ hint: '2 attempts left' });
    const field = screen.getByRole('textbox', { name: 'Name' });
    expect(field).toHaveAccessibleDescription('2 attempts left');
    await user.keyboard('{Enter}');
    expect(field).toHaveAccessibleDescription('2 attempts left Too short.');
  });

  it('neither validates nor answers while busy, and still cancels', async () => {
    const { answer, cancel, validate, user } = renderPrompt({ busy: true });
    expect(screen.getByRole('dialog', { name: 'Name it' })).toHaveAttribute('aria-busy', 'true');
    expect(screen.getByRole('button', { name: 'Save' })).toBeDisabled();
    await user.keyboard('abcd{Enter}');
    expect(validate).not.toHaveBeenCalled();
    expect(answer).not.toHaveBeenCalled();
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(cancel).toHaveBeenCalledOnce();
  });

  it("shows the backend's error above the buttons", () => {
    renderPrompt({ error: { code: 'CANCELLED', message: 'cancelled', details: {} } });
    expect(screen.getByRole('alert')).toHaveTextContent('Cancelled. Nothing was changed.');
  });
});
