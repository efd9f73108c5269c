// Packs the package as npm would publish it, then runs publint and attw on that tarball.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
const packed = JSON.parse(run('npm', ['pack', '--json', '--silent']))[0];
const tarball = packed.filename;
try {
  execFileSync('npx', ['publint', '--strict', tarball], { stdio: 'inherit' });
  execFileSync('npx', ['attw', tarball, '--profile', 'node16'], { stdio: 'inherit' });
} finally {
  rmSync(tarball, { force: true });
}
