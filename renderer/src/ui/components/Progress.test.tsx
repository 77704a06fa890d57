// @vitest-environment jsdom
import '../../testing/setup';
import { act, render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { Progress } from './Progress';

describe('Progress', () => {
  it('keeps one polite line in place before, during and after a wait, filled only after 300 ms', async () => {
    vi.useFakeTimers();
    const { container, rerender } = render(<Progress active={false} label="Working…" />);
    const line = container.querySelector('.progress');
    expect(line).toBeInTheDocument();
    expect(line).toHaveAttribute('aria-live', 'polite');
    expect(line).toBeEmptyDOMElement();

    rerender(<Progress active label="Working…" />);
    await act(() => vi.advanceTimersByTimeAsync(299));
    expect(line).toBeEmptyDOMElement();
    await act(() => vi.advanceTimersByTimeAsync(1));
    expect(screen.getByText('Working…')).toBe(line);
    expect(container.querySelector('.progress')).toBe(line);

    rerender(<Progress active={false} label="Working…" />);
    expect(container.querySelector('.progress')).toBe(line);
    expect(line).toBeEmptyDOMElement();
  });
});
