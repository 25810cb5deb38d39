// `troupe serve` as a child process on an ephemeral port, for the end-to-end suites.
// Environment: TROUPE_BIN (the troupe binary), TROUPE_E2E_MODEL (a GGUF).

import { spawn } from 'node:child_process';

// Starts the server and resolves with { proc, url } once /health says the model is ready.
export async function startServer({ apiKey, parallel = 4, ctxSize = 1024, extraArgs = [],
                                   model = process.env.TROUPE_E2E_MODEL, alias = 'tiny' }) {
  // model null: none (--engine sim); apiKey null: no key.
  const args = ['serve', ...(model === null ? [] : ['--model', model]), '--alias', alias,
                '--port', '0', ...(apiKey === null ? [] : ['--api-key', apiKey]),
                '--parallel', String(parallel),
                '--ctx-size', String(ctxSize), '--threads', '1', '--shutdown-grace', '2',
                ...extraArgs];
  const proc = spawn(process.env.TROUPE_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // The whole log is kept: stopServer shows its end when the server did not exit cleanly (a
  // sanitizer's report comes last).
  const output = { log: '' };
  const url = await new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output.log += chunk.toString();
      const m = output.log.match(/listening on (http:\/\/[0-9.]+:[0-9]+)/);
      if (m) resolve(m[1]);
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`troupe serve exited with ${code}:\n${output.log}`)));
  });
  for (let i = 0; i < 300; i++) {
    const r = await fetch(`${url}/health`);
    if (r.status === 200) return { proc, url, output };
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error('the server never became ready');
}

// Stops the server with SIGTERM and resolves with its exit code (null: it was not running).
export async function stopServer(server) {
  if (!server || server.proc.exitCode !== null) return server?.proc.exitCode ?? null;
  const exited = new Promise((res) => server.proc.on('exit', (code, signal) => {
    if (code !== 0) {
      process.stderr.write(`troupe serve exited with ${code ?? signal}; the end of its log:\n` +
                           `${server.output.log.slice(-8000)}\n`);
    }
    res(code);
  }));
  server.proc.kill('SIGTERM');
  return exited;
}
