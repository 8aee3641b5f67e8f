/**
 * The `sluice.io/command` annotation: a command line split into argv the way a POSIX shell
 * splits words, and nothing more.
 *
 * - Unquoted spaces, tabs and newlines separate words.
 * - '...' keeps everything literally (no escapes inside).
 * - "..." keeps everything, except that a backslash escapes ", \, $, ` and newline.
 * - Outside quotes a backslash escapes the next character; backslash-newline joins lines.
 * - Quotes join with adjacent text into one word ('a'b"c" is abc); '' is an empty word.
 * - No expansion of any kind: $VAR, ~, globs, and operators such as |, ;, && and > are
 *   ordinary characters. Write `sh -c '...'` to use a shell.
 */

export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line.charAt(i);
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated single quote at character ${i + 1}`);
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      let j = i + 1;
      for (;;) {
        if (j >= line.length) throw new Error(`unterminated double quote at character ${i + 1}`);
        const d = line.charAt(j);
        if (d === '"') break;
        if (d === '\\' && j + 1 < line.length && '"\\$`\n'.includes(line.charAt(j + 1))) {
          if (line.charAt(j + 1) !== '\n') word += line.charAt(j + 1);
          j += 2;
        } else {
          word += d;
          j++;
        }
      }
      inWord = true;
      i = j + 1;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error('trailing backslash');
      if (line.charAt(i + 1) !== '\n') {
        word += line.charAt(i + 1);
        inWord = true;
      }
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) throw new Error('empty command');
  return words;
}
