/** The npm tarball (issue 12, packaging): a LICENSE, a build before packing, and every README link resolving inside it. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

function packedFiles(): Set<string> {
  // --ignore-scripts: the list does not depend on dist/ being built (prepack builds it on a real `npm pack`).
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
  const [entry] = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>;
  return new Set(entry!.files.map((f) => f.path));
}

/** Relative link targets of a Markdown file (`[text](target)`), anchors dropped, resolved from its folder. */
function relativeLinks(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/') + 1) : '';
  const links: string[] = [];
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/i.test(target!) || target!.startsWith('#')) continue;
    const path = target!.split('#')[0]!;
    links.push(join(dir, path).replace(/\\/g, '/'));
  }
  return links;
}

describe('the npm tarball', () => {
  const files = packedFiles();

  it('ships a LICENSE, the README and the built entry points, and builds before packing (prepack)', () => {
    expect(files.has('LICENSE')).toBe(true);
    expect(files.has('README.md')).toBe(true);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string>; license: string };
    expect(pkg.scripts.prepack).toMatch(/^tsup\b/);
    expect(pkg.license).toBe('MIT');
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
  });

  it('every relative link of the README resolves to a file inside the tarball', () => {
    const links = relativeLinks('README.md');
    expect(links.length).toBeGreaterThan(0);
    const missing = links.filter((l) => !files.has(l));
    expect(missing).toEqual([]);
  });
});
