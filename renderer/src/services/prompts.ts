// The prompts the backend has open. The backend already shows one important prompt at a time; the
// renderer still keeps a list so that a prompt which arrives before the previous one's onPromptClosed
// replaces it on screen, and the previous one returns if it is still open afterwards.
import { useCallback, useEffect, useState } from 'react';
import type { KeyportApi, Prompt, PromptAnswer, Result } from '../../../preload/contract';
import { call } from './keyport';

export interface OpenPrompts {
  /** The latest open prompt: the one to show. */
  current: Prompt | null;
  answer(id: string, value: PromptAnswer): Promise<Result<null>>;
  cancel(id: string): Promise<Result<null>>;
}

export function usePrompts(api: KeyportApi): OpenPrompts {
  const [open, setOpen] = useState<Prompt[]>([]);
  const close = useCallback((id: string) => setOpen((list) => list.filter((p) => p.id !== id)), []);

  useEffect(() => {
    const offPrompt = api.onPrompt((prompt) =>
      setOpen((list) => [...list.filter((p) => p.id !== prompt.id), prompt]),
    );
    const offClosed = api.onPromptClosed(({ id }) => close(id));
    // A prompt opened before this window loaded (a reload mid-ceremony) is only known to the backend.
    let live = true;
    void call(() => api.prompts.current()).then((result) => {
      const prompt = result.ok ? result.value : null;
      if (live && prompt)
        setOpen((list) => (list.some((p) => p.id === prompt.id) ? list : [prompt, ...list]));
    });
    return () => {
      live = false;
      offPrompt();
      offClosed();
    };
  }, [api, close]);

  const answer = useCallback(
    async (id: string, value: PromptAnswer) => {
      const result = await call(() => api.prompts.answer({ id, value }));
      if (result.ok) close(id);
      return result;
    },
    [api, close],
  );

  const cancel = useCallback(
    async (id: string) => {
      const result = await call(() => api.prompts.cancel({ id }));
      // Either way the prompt is over: cancelled now, or already answered or closed by the backend.
      close(id);
      return result;
    },
    [api, close],
  );

  return { current: open.at(-1) ?? null, answer, cancel };
}
