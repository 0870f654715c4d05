// Preloaded into CLI runs by the reliability tests: prints the process's peak resident memory on exit.
process.on('exit', () => {
  process.stderr.write(`OTFUSE_MAXRSS_KB=${process.resourceUsage().maxRSS}\n`);
});
