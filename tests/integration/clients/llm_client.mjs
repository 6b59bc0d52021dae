#!/usr/bin/env node
// One LLM API call through an official SDK, for agentwall's integration tests.
//
//   node llm_client.mjs --sdk openai|openai-responses|openai-embeddings|anthropic|gemini|
//                             ollama|ollama-generate
//                       --stream|--no-stream [--tools] [--include-usage]
//                       --base-url https://127.0.0.1:PORT [--tag TEXT] [--encoding gzip|br]
//                       [--user TEXT] [--model NAME] [--history N] [--answer-bytes N]
//
// Makes ONE call with a fixed model, system prompt and user message (with --tools: declares a
// get_weather tool and asks about the weather), consumes the whole result (iterating streams),
// and prints one JSON line:
//
//   {"sdk", "pid", "model", "stream", "system", "messages": [{"role", "text"}],
//    "tools": [names], "output_text", "tool_calls": [{"id", "name", "arguments"}],
//    "usage": the usage object the SDK exposes (provider field names) or null,
//    "response_model", "finish_reason"}
//
// --base-url is the stand-in's origin (no /v1): each SDK gets the prefix it expects.
// --tag sends "x-standin-tag: TEXT" (echoed in the stand-in's log line); --encoding sends
// "x-standin-encoding" (the stand-in then compresses its answer; the SDKs' fetch decodes it);
// --answer-bytes sends "x-standin-answer-bytes" (a long answer, OpenAI chat only).
// TLS trust comes from NODE_EXTRA_CA_CERTS (the tests point it at their CA). The SDKs never
// retry (maxRetries 0), so one run is exactly one request.

import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import {GoogleGenAI} from '@google/genai';
import {Ollama} from 'ollama';

const SDKS = ['openai', 'openai-responses', 'openai-embeddings', 'anthropic', 'gemini', 'ollama',
  'ollama-generate'];

const MODELS = {
  'openai': 'gpt-4o-mini',
  'openai-responses': 'gpt-4o-mini',
  'openai-embeddings': 'text-embedding-3-small',
  'anthropic': 'claude-3-5-haiku-20241022',
  'gemini': 'gemini-2.0-flash',
  'ollama': 'llama3.2',
  'ollama-generate': 'llama3.2',
};

const API_KEYS = {
  'openai': 'sk-test-agentwall-0001',
  'anthropic': 'sk-ant-test-agentwall-0001',
  'gemini': 'AIzaTestAgentwall0001',
  'ollama': null,
};

const SYSTEM = "You are agentwall's integration test assistant. Answer in one short sentence.";
const USER_PLAIN = 'Say hello to the integration test and mention the number 42.';
const USER_TOOLS = 'What is the weather in Paris right now? Use the get_weather tool.';
const EMBED_INPUTS = ['agentwall integration test: first embedding input',
  'second input, about the weather in Paris'];

const WEATHER_PARAMS = {
  type: 'object',
  properties: {
    location: {type: 'string', description: 'City name, e.g. Paris'},
    unit: {type: 'string', enum: ['celsius', 'fahrenheit']},
  },
  required: ['location'],
};
const WEATHER_DESC = 'Get the current weather for a city.';

function parseArgs(argv) {
  const o = {sdk: null, stream: null, tools: false, includeUsage: false, baseUrl: null,
    tag: null, encoding: null, history: 0, user: null, model: null, answerBytes: 0};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--sdk') o.sdk = next();
    else if (a === '--stream') o.stream = true;
    else if (a === '--no-stream') o.stream = false;
    else if (a === '--tools') o.tools = true;
    else if (a === '--include-usage') o.includeUsage = true;
    else if (a === '--base-url') o.baseUrl = next().replace(/\/+$/, '');
    else if (a === '--tag') o.tag = next();
    else if (a === '--encoding') o.encoding = next();
    else if (a === '--history') o.history = Number.parseInt(next(), 10);
    else if (a === '--user') o.user = next();
    else if (a === '--model') o.model = next();
    else if (a === '--answer-bytes') o.answerBytes = Number.parseInt(next(), 10);
    else fail(`unknown argument ${a}`);
  }
  if (!SDKS.includes(o.sdk)) fail(`--sdk must be one of ${SDKS.join(', ')}`);
  if (o.stream === null) fail('--stream or --no-stream is required');
  if (!o.baseUrl) fail('--base-url is required');
  if (o.sdk === 'openai-embeddings' && o.stream) fail('embeddings cannot stream');
  return o;
}

function fail(msg) {
  process.stderr.write(`llm_client: ${msg}\n`);
  process.exit(2);
}

// --history N: N earlier user/assistant turns of about 1.5 KiB each, as a coding agent's
// conversation carries them (the pipeline benchmark's large-request case).
function history(o) {
  const turns = [];
  for (let i = 0; i < o.history; i++) {
    const code = Array.from({length: 12}, (_, k) =>
      `  const value${k} = compute(input[${i + k}], options.scale * ${k + 1}); // step ${k}`).join('\n');
    turns.push({role: 'user', content: `Turn ${i}: please review this function and say ` +
      `whether it handles empty input:\nfunction f${i}(input, options) {\n${code}\n}`});
    turns.push({role: 'assistant', content: `Turn ${i}: the function reads input[${i}] ` +
      'without checking the length, so an empty array yields undefined values; add a guard.'});
  }
  return turns;
}

function extraHeaders(o) {
  const h = {};
  if (o.tag) h['x-standin-tag'] = o.tag;
  if (o.encoding) h['x-standin-encoding'] = o.encoding;
  if (o.answerBytes) h['x-standin-answer-bytes'] = String(o.answerBytes);
  return h;
}

// ------------------------------------------------------------------------------------------
// OpenAI
// ------------------------------------------------------------------------------------------

function openaiClient(o) {
  return new OpenAI({apiKey: API_KEYS.openai, baseURL: `${o.baseUrl}/v1`, maxRetries: 0,
    timeout: 30000, defaultHeaders: extraHeaders(o)});
}

async function runOpenaiChat(o, out) {
  const client = openaiClient(o);
  const user = o.user ?? (o.tools ? USER_TOOLS : USER_PLAIN);
  const params = {
    model: out.model,
    messages: [{role: 'system', content: SYSTEM}, ...history(o), {role: 'user', content: user}],
    max_tokens: 200,
  };
  out.messages = [...history(o).map((m) => ({role: m.role, text: m.content})),
    {role: 'user', text: user}];
  if (o.tools) {
    params.tools = [{type: 'function', function: {name: 'get_weather', description: WEATHER_DESC,
      parameters: WEATHER_PARAMS}}];
    out.tools = ['get_weather'];
  }
  if (!o.stream) {
    const r = await client.chat.completions.create(params);
    const msg = r.choices[0].message;
    out.output_text = msg.content ?? '';
    out.tool_calls = (msg.tool_calls || []).map((t) => ({id: t.id, name: t.function.name,
      arguments: t.function.arguments}));
    out.usage = r.usage ?? null;
    out.response_model = r.model;
    out.finish_reason = r.choices[0].finish_reason;
    return;
  }
  params.stream = true;
  if (o.includeUsage) params.stream_options = {include_usage: true};
  const stream = await client.chat.completions.create(params);
  let text = '';
  const calls = [];
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.model) out.response_model = chunk.model;
    if (chunk.usage) out.usage = chunk.usage;
    for (const ch of chunk.choices || []) {
      if (ch.delta?.content) text += ch.delta.content;
      for (const t of ch.delta?.tool_calls || []) {
        const c = calls[t.index] ??= {id: null, name: '', arguments: ''};
        if (t.id) c.id = t.id;
        if (t.function?.name) c.name += t.function.name;
        if (t.function?.arguments) c.arguments += t.function.arguments;
      }
      if (ch.finish_reason) out.finish_reason = ch.finish_reason;
    }
  }
  out.output_text = text;
  out.tool_calls = calls.filter(Boolean);
  out.chunks = chunks;
}

async function runOpenaiResponses(o, out) {
  const client = openaiClient(o);
  const user = o.user ?? (o.tools ? USER_TOOLS : USER_PLAIN);
  const params = {model: out.model, instructions: SYSTEM, input: user, max_output_tokens: 200};
  out.messages = [{role: 'user', text: user}];
  if (o.tools) {
    params.tools = [{type: 'function', name: 'get_weather', description: WEATHER_DESC,
      parameters: WEATHER_PARAMS, strict: false}];
    out.tools = ['get_weather'];
  }
  const collect = (resp) => {
    out.response_model = resp.model;
    out.usage = resp.usage ?? null;
    out.finish_reason = resp.status;
    out.tool_calls = (resp.output || []).filter((it) => it.type === 'function_call')
      .map((it) => ({id: it.call_id, name: it.name, arguments: it.arguments}));
  };
  if (!o.stream) {
    const r = await client.responses.create(params);
    collect(r);
    out.output_text = r.output_text ?? '';
    return;
  }
  params.stream = true;
  const stream = await client.responses.create(params);
  let text = '';
  let events = 0;
  out.event_types = [];
  for await (const ev of stream) {
    events++;
    if (!out.event_types.includes(ev.type)) out.event_types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') collect(ev.response);
  }
  out.output_text = text;
  out.chunks = events;
}

async function runOpenaiEmbeddings(o, out) {
  const client = openaiClient(o);
  // No encoding_format: the SDK then asks for base64 and decodes it (its default).
  const r = await client.embeddings.create({model: out.model, input: EMBED_INPUTS});
  out.messages = EMBED_INPUTS.map((t) => ({role: 'user', text: t}));
  out.system = '';
  out.output_text = '';
  out.usage = r.usage ?? null;
  out.response_model = r.model;
  out.embeddings = r.data.length;
  out.dimensions = r.data[0]?.embedding?.length ?? 0;
}

// ------------------------------------------------------------------------------------------
// Anthropic
// ------------------------------------------------------------------------------------------

async function runAnthropic(o, out) {
  const client = new Anthropic({apiKey: API_KEYS.anthropic, baseURL: o.baseUrl, maxRetries: 0,
    timeout: 30000, defaultHeaders: extraHeaders(o)});
  const user = o.user ?? (o.tools ? USER_TOOLS : USER_PLAIN);
  const params = {model: out.model, max_tokens: 256, system: SYSTEM,
    messages: [...history(o), {role: 'user', content: user}]};
  out.messages = [...history(o).map((m) => ({role: m.role, text: m.content})),
    {role: 'user', text: user}];
  if (o.tools) {
    params.tools = [{name: 'get_weather', description: WEATHER_DESC, input_schema: WEATHER_PARAMS}];
    out.tools = ['get_weather'];
  }
  let msg;
  if (!o.stream) {
    msg = await client.messages.create(params);
  } else {
    // The SDK's own accumulation of the event stream (what applications use).
    const stream = client.messages.stream(params);
    let events = 0;
    out.event_types = [];
    stream.on('streamEvent', (ev) => {
      events++;
      if (!out.event_types.includes(ev.type)) out.event_types.push(ev.type);
    });
    msg = await stream.finalMessage();
    out.chunks = events;
  }
  out.output_text = msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');
  out.tool_calls = msg.content.filter((b) => b.type === 'tool_use')
    .map((b) => ({id: b.id, name: b.name, arguments: JSON.stringify(b.input)}));
  out.usage = msg.usage ?? null;
  out.response_model = msg.model;
  out.finish_reason = msg.stop_reason;
}

// ------------------------------------------------------------------------------------------
// Gemini
// ------------------------------------------------------------------------------------------

async function runGemini(o, out) {
  const ai = new GoogleGenAI({apiKey: API_KEYS.gemini,
    httpOptions: {baseUrl: o.baseUrl, headers: extraHeaders(o), timeout: 30000}});
  const user = o.user ?? (o.tools ? USER_TOOLS : USER_PLAIN);
  const config = {systemInstruction: SYSTEM, maxOutputTokens: 200};
  if (o.tools) {
    config.tools = [{functionDeclarations: [{name: 'get_weather', description: WEATHER_DESC,
      parametersJsonSchema: WEATHER_PARAMS}]}];
    out.tools = ['get_weather'];
  }
  out.messages = [{role: 'user', text: user}];
  const req = {model: out.model, contents: [{role: 'user', parts: [{text: user}]}], config};
  // The text parts ourselves: `r.text` warns on stderr when the answer is a function call.
  const textOf = (r) => (r.candidates?.[0]?.content?.parts || [])
    .filter((p) => typeof p.text === 'string' && !p.thought).map((p) => p.text).join('');
  const take = (r) => {
    if (r.usageMetadata) out.usage = r.usageMetadata;
    if (r.modelVersion) out.response_model = r.modelVersion;
    const fr = r.candidates?.[0]?.finishReason;
    if (fr) out.finish_reason = fr;
    for (const fc of r.functionCalls || []) {
      out.tool_calls.push({id: fc.id ?? null, name: fc.name, arguments: JSON.stringify(fc.args ?? {})});
    }
  };
  if (!o.stream) {
    const r = await ai.models.generateContent(req);
    out.output_text = textOf(r);
    take(r);
    return;
  }
  let text = '';
  let chunks = 0;
  for await (const r of await ai.models.generateContentStream(req)) {
    chunks++;
    text += textOf(r);
    take(r);
  }
  out.output_text = text;
  out.chunks = chunks;
}

// ------------------------------------------------------------------------------------------
// Ollama
// ------------------------------------------------------------------------------------------

async function runOllama(o, out) {
  const client = new Ollama({host: o.baseUrl, headers: extraHeaders(o)});
  const user = o.user ?? (o.tools ? USER_TOOLS : USER_PLAIN);
  const usageOf = (r) => (r.done ? {prompt_eval_count: r.prompt_eval_count,
    eval_count: r.eval_count} : null);
  out.messages = [{role: 'user', text: user}];
  if (o.sdk === 'ollama-generate') {
    const params = {model: out.model, system: SYSTEM, prompt: user, stream: o.stream};
    if (!o.stream) {
      const r = await client.generate(params);
      out.output_text = r.response;
      out.usage = usageOf(r);
      out.finish_reason = r.done_reason;
      out.response_model = r.model;
      return;
    }
    let text = '';
    let chunks = 0;
    for await (const part of await client.generate(params)) {
      chunks++;
      text += part.response ?? '';
      if (part.done) {
        out.usage = usageOf(part);
        out.finish_reason = part.done_reason;
        out.response_model = part.model;
      }
    }
    out.output_text = text;
    out.chunks = chunks;
    return;
  }
  const params = {model: out.model, stream: o.stream,
    messages: [{role: 'system', content: SYSTEM}, {role: 'user', content: user}]};
  if (o.tools) {
    params.tools = [{type: 'function', function: {name: 'get_weather', description: WEATHER_DESC,
      parameters: WEATHER_PARAMS}}];
    out.tools = ['get_weather'];
  }
  const takeCalls = (m) => {
    for (const t of m?.tool_calls || []) {
      out.tool_calls.push({id: t.id ?? null, name: t.function.name,
        arguments: JSON.stringify(t.function.arguments ?? {})});
    }
  };
  if (!o.stream) {
    const r = await client.chat(params);
    out.output_text = r.message.content;
    takeCalls(r.message);
    out.usage = usageOf(r);
    out.finish_reason = r.done_reason;
    out.response_model = r.model;
    return;
  }
  let text = '';
  let chunks = 0;
  for await (const part of await client.chat(params)) {
    chunks++;
    text += part.message?.content ?? '';
    takeCalls(part.message);
    if (part.done) {
      out.usage = usageOf(part);
      out.finish_reason = part.done_reason;
      out.response_model = part.model;
    }
  }
  out.output_text = text;
  out.chunks = chunks;
}

// ------------------------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const out = {
    sdk: o.sdk, pid: process.pid, model: o.model ?? MODELS[o.sdk], stream: o.stream, system: SYSTEM,
    messages: [], tools: [], output_text: '', tool_calls: [], usage: null, response_model: null,
    finish_reason: null,
  };
  const run = {
    'openai': runOpenaiChat, 'openai-responses': runOpenaiResponses,
    'openai-embeddings': runOpenaiEmbeddings, 'anthropic': runAnthropic, 'gemini': runGemini,
    'ollama': runOllama, 'ollama-generate': runOllama,
  }[o.sdk];
  await run(o, out);
  // A pipe takes a long line in several writes: exit only once it has taken all of it.
  await new Promise((resolve) => process.stdout.write(JSON.stringify(out) + '\n', resolve));
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`llm_client: ${e && e.stack || e}\n`);
  if (e && e.cause) process.stderr.write(`llm_client: cause: ${e.cause.stack || e.cause}\n`);
  process.exit(1);
});
