/** The `central-hub` executable (dist/cli.js; tsup adds the shebang): `runCli` on the process's streams. */
import { runCli } from './main.js';

runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  // Opened only by the commands that read it: an unread stdin must not hold the process.
  get stdin() {
    return process.stdin;
  },
  isTTY: process.stdout.isTTY === true,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`central-hub: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
