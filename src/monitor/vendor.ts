/**
 * Third-party files the page uses, served from the installed packages (never a CDN: the monitor works offline).
 * Only the files listed here are reachable, under `/vendor/`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** `/vendor/<name>` → the package and the file in it. */
const VENDOR_FILES: Record<string, { pkg: string; file: string }> = {
  'uPlot.iife.min.js': { pkg: 'uplot', file: 'dist/uPlot.iife.min.js' },
  'uPlot.min.css': { pkg: 'uplot', file: 'dist/uPlot.min.css' },
};

/** The file on disk for a `/vendor/...` path, or undefined when it is not one of ours or is not installed. */
export function vendorFile(pathname: string): string | undefined {
  const name = pathname.startsWith('/vendor/') ? pathname.slice('/vendor/'.length) : undefined;
  const entry = name === undefined ? undefined : VENDOR_FILES[name];
  if (!entry) return undefined;
  let root: string;
  try {
    // the package's main entry is in dist/: its folder's parent is the package
    root = dirname(dirname(require.resolve(entry.pkg)));
  } catch {
    return undefined;
  }
  const file = join(root, entry.file);
  return existsSync(file) ? file : undefined;
}
