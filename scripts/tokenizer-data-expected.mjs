#!/usr/bin/env node
// Writes tests/fixtures/tokenizer/expected.json: token ids from js-tiktoken itself, the same
// pinned package that cmake/tokenizer.cmake embeds, for tests/unit/tokenizer_test.cc.
//
//   node scripts/tokenizer-data-expected.mjs [--cache DIR]     (run from anywhere; needs npm)
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import {createRequire} from 'node:module';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

import {ENCODINGS, fetchTarball, tarballName} from './tokenizer-data.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cmake = fs.readFileSync(path.join(root, 'cmake/tokenizer.cmake'), 'utf8');
const pinned = (name) => cmake.match(new RegExp(`set\\(${name} "([^"]+)"\\)`))[1];
const spec = pinned('AGENTWALL_TOKENIZER_NPM_SPEC');
const integrity = pinned('AGENTWALL_TOKENIZER_NPM_INTEGRITY');
const cacheArg = process.argv.indexOf('--cache');
const cache = cacheArg > 0 ? process.argv[cacheArg + 1] : path.join(root, '.cache/npm');

// The same verified tarball as the build, installed (with its dependency) in a scratch dir.
fetchTarball(spec, integrity, cache);
const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenizer-expected-'));
execFileSync('npm', ['install', '--no-save', '--silent', '--ignore-scripts', '--prefix', prefix,
                     path.join(cache, tarballName(spec))],
             {stdio: ['ignore', 'ignore', 'inherit']});
const require = createRequire(path.join(prefix, 'package.json'));
const {Tiktoken} = require('js-tiktoken/lite');
const encoders =
    ENCODINGS.map((name) => [name, new Tiktoken(require(`js-tiktoken/ranks/${name}`))]);

const cases = [
  ['empty', ''],
  ['prose', 'The quick brown fox jumps over the lazy dog. It wasn\'t the first time; ' +
     'the dog, unbothered, merely yawned and went back to sleep.\n\nA second paragraph ' +
     'follows, with "quotes", (parentheses), and an em-dash \u2014 like this.'],
  ['code', 'int main(int argc, char** argv) {\n  for (int i = 0; i < argc; ++i) {\n' +
     '    printf("%s\\n", argv[i]);\n  }\n  return 0;\n}\n\ndef f(x):\n\treturn x ** 2  # sq\n'],
  ['json', '{"model":"gpt-4o","messages":[{"role":"user","content":"Hi!"}],"max_tokens":128}'],
  ['numbers', '1234567 3.14159 -42 1e10 0x1F 2024-05-13 1,000,000 12345678901234567890'],
  ['whitespace', 'a  b   c    d\t\te \t \t f     \n   g        '],
  ['newlines', 'line1\nline2\r\nline3\n\n\nline4\r\r\n  \n \n\t\nend\n'],
  ['contractions', 'I\'ll say DON\'T, you\'re, we\'VE, she\'d, it\'S, they\'Ll, I\'M, o\'clock, ' +
     'rock \'n\' roll, \'tis'],
  ['accents', 'Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber Stra\u00dfe \u00c5ngstr\u00f6m ' +
     'e\u0301 (combining) Cr\u00e8me br\u00fbl\u00e9e \u0141\u00f3d\u017a'],
  ['cjk', '\u6211\u7231\u81ea\u7136\u8bed\u8a00\u5904\u7406\u3002\u65e5\u672c\u8a9e\u306e' +
     '\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002\ud55c\uad6d\uc5b4 ' +
     '\ubb38\uc7a5\uc785\ub2c8\ub2e4.'],
  ['emoji', 'Hi \ud83d\udc4b\ud83c\udffd! \ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67 ' +
     '\ud83c\uddfa\ud83c\uddf8 \u2764\ufe0f\ud83d\udd25\ud83d\udd25\ud83d\udd25 \u2705'],
  ['mixed scripts', 'English, \u0420\u0443\u0441\u0441\u043a\u0438\u0439, \u0395\u03bb\u03bb' +
     '\u03b7\u03bd\u03b9\u03ba\u03ac, \u0627\u0644\u0639\u0631\u0628\u064a\u0629, \u05e2\u05d1' +
     '\u05e8\u05d9\u05ea, \u0939\u093f\u0928\u094d\u0926\u0940, \u0e44\u0e17\u0e22, \u4e2d\u6587' +
     'mixedW\u00f6rds123abc'],
  ['special token text', 'Before <|endoftext|> after <|endofprompt|> <|fim_prefix|>x'],
  ['upper and lower', 'HTTPServer parseJSONResponse getHTTPResponseCode XMLHttpRequest iOS ' +
     'McDonald\'S CamelCase snake_case SCREAMING_CASE'],
  ['punctuation', '!!!??? ... --- *** /// \\\\\\ @#$%^&*() <<>> {{}} [[]] ;;; ::: \'\'\' """'],
  ['url and path', 'https://api.openai.com/v1/chat/completions?stream=true /usr/local/bin/'],
  ['long a', 'a'.repeat(3000)],
  ['long spaces', ' '.repeat(3000) + 'x'],
  ['long digits', '7'.repeat(3001)],
  ['long punctuation', '!'.repeat(2000)],
  ['long newlines', '\n'.repeat(1000)],
  ['long accented', '\u00e9'.repeat(1500)],
  ['long cjk', '\u65e5\u672c'.repeat(600)],
  ['long ab', 'ab'.repeat(1500)],
];

// Seeded random strings over many character classes: pieces of every kind and length,
// long ones through the heap merge. No characters where JavaScript's regex and tiktoken's
// disagree (U+0085, U+180E, U+FEFF, U+017F) or that are newer than Unicode 14.
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pools = [
  'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', '0123456789', '   ', '\n\r\t',
  '.,;:!?\'"()[]{}<>/\\-_=+*&^%$#@~`|', "'sdtmlrev",
  '\u00e0\u00e9\u00ee\u00f5\u00fc\u00e7\u00df\u00c9\u00d1', '\u0391\u03b2\u03b3\u0394\u03b5',
  '\u0430\u0431\u0432\u0413\u0414', '\u4e00\u4e8c\u4e09\u4eba\u5927\u65e5\u672c\u8a9e',
  '\u3042\u3044\u30a2\u30a4\u30fc', '\ud55c\uad6d\uc5b4', '\u0627\u0644\u0639',
  '\u0939\u093f\u094d',
  '\u0301\u0308\u20d7', '\u00a0\u2003\u3000\u2028', '\u00b2\u00bd\u0663\u2164',
  '\ud83d\ude00\ud83d\udc4d\ud83c\udf89\u200d\ufe0f',
];
const random = mulberry32(20240513);
const pick = (s) => {
  const chars = [...s];
  return chars[Math.floor(random() * chars.length)];
};
for (let i = 0; i < 120; ++i) {
  const length = i < 110 ? Math.floor(random() * 80) : 1000 + Math.floor(random() * 1000);
  const few = pools.filter(() => random() < 0.35);
  const use = few.length > 0 ? few : pools;
  let text = '';
  while ([...text].length < length) text += pick(use[Math.floor(random() * use.length)]);
  cases.push([`random ${i}`, text]);
}

const out = {
  generator: 'scripts/tokenizer-data-expected.mjs',
  package: spec,
  cases: cases.map(([name, text]) => {
    const c = {name, text};
    for (const [enc, tiktoken] of encoders) c[enc] = tiktoken.encode(text, [], []);
    return c;
  }),
};
const file = path.join(root, 'tests/fixtures/tokenizer/expected.json');
fs.mkdirSync(path.dirname(file), {recursive: true});
fs.writeFileSync(file, JSON.stringify(out, null, 0).replace(/\{"name"/g, '\n{"name"') + '\n');
fs.rmSync(prefix, {recursive: true, force: true});
console.log(`wrote ${file}: ${out.cases.length} cases`);
