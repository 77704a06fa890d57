// Placeholder until the browser bridge lands.
export {};
