// grpc-js sends an IP target as TLS SNI, which Node flags (DEP0123) for every in-process client; the CLI
// hides the notice the same way. Other warnings still print.
process.removeAllListeners('warning');
process.on('warning', (warning: NodeJS.ErrnoException) => {
  if (warning.code !== 'DEP0123') console.error(`${warning.name}: ${warning.message}`);
});
