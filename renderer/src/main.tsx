import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { keyportFromWindow } from './services/keyport';
import { App } from './ui/App';
import './ui/app.css';

const root = createRoot(document.getElementById('root')!);
const api = keyportFromWindow();

root.render(
  <StrictMode>
    {api ? (
      <App api={api} />
    ) : (
      <main className="app-main">
        <h1>Keyport Connect</h1>
        <p role="alert">Keyport Connect cannot reach its backend. Start it with the Keyport Connect app.</p>
      </main>
    )}
  </StrictMode>,
);
