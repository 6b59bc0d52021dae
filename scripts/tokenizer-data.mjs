#!/usr/bin/env node
// Build step for agent/llm/tokenizer: turns the BPE ranks shipped in the npm package js-tiktoken
// into a binary blob and a .cc that embeds it with .incbin (see cmake/tokenizer.cmake).
//
//   node scripts/tokenizer-data.mjs --spec js-tiktoken@1.0.21 --integrity sha512-... \
//     --cache DIR --blob OUT.bin --source OUT.cc
//
// The package tarball is fetched once with `npm pack` into DIR (shared by all build trees) and
// checked against the pinned integrity before anything is read from it.
//
// Blob layout, little-endian u32s:
//   "AWTK" version encoding_count
//   per encoding (o200k_base, cl100k_base): token_count offsets_at bytes_at bytes_len
//   offsets: token_count + 1 offsets into the bytes of that encoding; token r is
//   bytes[offsets[r], offsets[r + 1]).
import {execFileSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {pathToFileURL} from 'node:url';
import zlib from 'node:zlib';

export const ENCODINGS = ['o200k_base', 'cl100k_base'];
const BLOB_VERSION = 1;

function fail(message) {
  process.stderr.write(`tokenizer-data: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) fail(`bad argument ${argv[i]}`);
    args[argv[i].slice(2)] = argv[i + 1];
  }
  return args;
}

// "js-tiktoken@1.0.21" -> the file name `npm pack` writes.
export function tarballName(spec) {
  const at = spec.lastIndexOf('@');
  return `${spec.slice(0, at).replace(/^@/, '').replace('/', '-')}-${spec.slice(at + 1)}.tgz`;
}

function integrityOf(bytes) {
  return 'sha512-' + createHash('sha512').update(bytes).digest('base64');
}

// Returns the verified tarball bytes, fetching them into `cache` when absent.
export function fetchTarball(spec, integrity, cache) {
  const file = path.join(cache, tarballName(spec));
  if (!fs.existsSync(file)) {
    fs.mkdirSync(cache, {recursive: true});
    const tmp = fs.mkdtempSync(path.join(cache, '.tmp-'));
    let problem = null;
    try {
      execFileSync('npm', ['pack', spec, '--pack-destination', tmp, '--prefer-offline',
                           '--silent', '--ignore-scripts'],
                   {cwd: tmp, stdio: ['ignore', 'ignore', 'inherit']});
      const got = path.join(tmp, tarballName(spec));
      if (integrityOf(fs.readFileSync(got)) === integrity) {
        fs.renameSync(got, file);  // atomic: parallel build trees see all or nothing
      } else {
        problem = `${spec} from the npm registry does not match the pinned integrity ${integrity}`;
      }
    } catch (e) {
      if (e.status === undefined && e.code !== 'ENOENT') throw e;
      const why = e.code === 'ENOENT' ? 'npm not found' : 'npm failed';
      problem = `could not fetch ${spec}: ${why}.\n` +
                `  Offline: on a connected machine run \`npm pack ${spec}\` and copy ` +
                `${tarballName(spec)} to ${cache}/, then build again.`;
    } finally {
      fs.rmSync(tmp, {recursive: true, force: true});
    }
    if (problem) fail(problem);
  }
  const bytes = fs.readFileSync(file);
  if (integrityOf(bytes) !== integrity) {
    fail(`${file} does not match the pinned integrity ${integrity}; delete it and build again`);
  }
  return bytes;
}

// Minimal ustar reader: path -> contents of the regular files in a .tgz.
export function untar(tgz) {
  const tar = zlib.gunzipSync(tgz);
  const files = new Map();
  const field = (at, len) => tar.toString('latin1', at, at + len).replace(/\0.*$/s, '');
  for (let at = 0; at + 512 <= tar.length;) {
    const name = field(at, 100);
    if (name === '') break;
    const size = parseInt(field(at + 124, 12).trim() || '0', 8);
    const type = field(at + 156, 1);
    const prefix = field(at + 257, 6).startsWith('ustar') ? field(at + 345, 155) : '';
    if (type === '0' || type === '') {
      files.set(prefix ? `${prefix}/${name}` : name, tar.subarray(at + 512, at + 512 + size));
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

// ranks/<name>.js is `export default {"pat_str":..,"bpe_ranks":".."}`; each line of bpe_ranks
// is "<tag> <first rank> <base64 token> <base64 token> ..." with consecutive ranks.
export function parseRanks(files, name) {
  const src = files.get(`package/dist/ranks/${name}.js`)?.toString('utf8');
  if (!src) fail(`the package has no dist/ranks/${name}.js`);
  const data = JSON.parse(src.slice(src.indexOf('{'), src.lastIndexOf('}') + 1));
  const tokens = [];
  for (const line of data.bpe_ranks.split('\n')) {
    if (line === '') continue;
    const [, first, ...encoded] = line.split(' ');
    encoded.forEach((b64, i) => { tokens[Number(first) + i] = Buffer.from(b64, 'base64'); });
  }
  for (let r = 0; r < tokens.length; ++r) {
    if (!tokens[r]) fail(`${name}: rank ${r} is missing`);
  }
  return tokens;
}

function u32(values) {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32LE(v, 4 * i));
  return b;
}

export function buildBlob(tables) {
  const headerLen = 12 + 16 * tables.length;
  const parts = [];
  const header = [];
  let at = headerLen;
  for (const tokens of tables) {
    const offsets = [0];
    for (const t of tokens) offsets.push(offsets[offsets.length - 1] + t.length);
    const bytes = Buffer.concat(tokens);
    header.push(tokens.length, at, at + 4 * offsets.length, bytes.length);
    parts.push(u32(offsets), bytes, Buffer.alloc((4 - (bytes.length % 4)) % 4));
    at += 4 * offsets.length + bytes.length + ((4 - (bytes.length % 4)) % 4);
  }
  return Buffer.concat([Buffer.from('AWTK'), u32([BLOB_VERSION, tables.length, ...header]),
                        ...parts]);
}

function embeddingSource(spec, blobPath) {
  return `// Generated by scripts/tokenizer-data.mjs from ${spec}. Do not edit.
#include "agent/common/embed.h"
#include "agent/llm/tokenizer/rank_blob.h"

AGENTWALL_EMBED(agentwall_tokenizer_ranks, ${JSON.stringify(path.resolve(blobPath))});

namespace agentwall::llm::tokenizer_internal {
std::span<const unsigned char> rank_blob() {
  const std::string_view bytes =
      embedded_bytes(agentwall_tokenizer_ranks_begin, agentwall_tokenizer_ranks_end);
  return {reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()};
}
}  // namespace agentwall::llm::tokenizer_internal
`;
}

function writeAtomically(file, contents) {
  fs.mkdirSync(path.dirname(file), {recursive: true});
  fs.writeFileSync(`${file}.tmp`, contents);
  fs.renameSync(`${file}.tmp`, file);
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  for (const k of ['spec', 'integrity', 'cache', 'blob', 'source']) {
    if (!args[k]) fail(`missing --${k}`);
  }
  const files = untar(fetchTarball(args.spec, args.integrity, args.cache));
  writeAtomically(args.blob, buildBlob(ENCODINGS.map((name) => parseRanks(files, name))));
  writeAtomically(args.source, embeddingSource(args.spec, args.blob));
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) main();
