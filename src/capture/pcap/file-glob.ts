/**
 * Shell-style file patterns (`cap-*.pcap.gz`, `day-0?/eth[01].pcap`) expanded by flowtap
 * itself, for a pattern the shell did not expand (quoted, or from a script). `*`, `?` and
 * `[...]` (`[!...]` negated) match within one path segment; a leading dot is matched only by a
 * pattern segment that starts with one, as in the shell.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

const WILDCARD = /[*?[]/;

/** True when `text` has a wildcard character and so may be a pattern. */
export function hasWildcard(text: string): boolean {
  return WILDCARD.test(text);
}

/** The regular expression of one pattern segment. */
function segmentRegExp(segment: string): RegExp {
  let source = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close < 0) {
        source += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, close);
      const negated = body.startsWith('!');
      if (negated) body = body.slice(1);
      source += `[${negated ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else source += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

/** The paths matching `pattern`, sorted; none when nothing matches or a directory cannot be read. */
export async function expandGlob(pattern: string): Promise<string[]> {
  const absolute = pattern.startsWith('/');
  const segments = pattern.split('/').filter((s) => s !== '');
  let bases = [absolute ? '/' : ''];
  for (const [i, segment] of segments.entries()) {
    const last = i === segments.length - 1;
    const next: string[] = [];
    for (const base of bases) {
      if (!hasWildcard(segment)) {
        next.push(base === '' ? segment : join(base, segment));
        continue;
      }
      const matcher = segmentRegExp(segment);
      const entries = await readdir(base === '' ? '.' : base, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (entry.name.startsWith('.') && !segment.startsWith('.')) continue;
        if (!matcher.test(entry.name)) continue;
        // Only directories lead on; a symbolic link may be either, so it is kept and checked later.
        if (!last && !entry.isDirectory() && !entry.isSymbolicLink()) continue;
        next.push(base === '' ? entry.name : join(base, entry.name));
      }
    }
    bases = next;
  }
  return bases.sort();
}
