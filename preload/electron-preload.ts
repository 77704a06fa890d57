// Placeholder until the Electron preload lands.
export {};
