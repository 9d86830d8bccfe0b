/** "Did you mean …?" for a mistyped name: the known names closest to it by edit distance. */

/** Optimal string alignment distance (Levenshtein with adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidates nearest to `word` (at most a third of its length away, at least 1, at most 3 edits), best first;
 * a candidate that starts with `word` (an abbreviation, `stf_c` for `stf_count`) counts as near too.
 */
export function similar(word: string, candidates: readonly string[]): string[] {
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  const scored = [...new Set(candidates)]
    .filter((c) => c !== word)
    .map((c) => ({ c, d: editDistance(word.toLowerCase(), c.toLowerCase()) }))
    .filter(({ c, d }) => d <= limit || (word.length >= 3 && c.startsWith(word)));
  if (scored.length === 0) return [];
  const best = Math.min(...scored.map((s) => s.d));
  return scored
    .filter((s) => s.d === best || s.c.startsWith(word))
    .sort((x, y) => x.d - y.d || x.c.localeCompare(y.c))
    .map((s) => s.c);
}

/** ` (did you mean 'x'?)`, ` (did you mean 'x' or 'y'?)`, or '' when nothing is near. */
export function didYouMean(word: string, candidates: readonly string[], quote = (s: string) => `'${s}'`): string {
  const near = similar(word, candidates).slice(0, 3);
  if (near.length === 0) return '';
  const names = near.map(quote);
  return ` (did you mean ${names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`}?)`;
}
