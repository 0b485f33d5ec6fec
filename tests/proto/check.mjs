// check.mjs - the checks of proto/openapi.yaml and proto/asyncapi.yaml
// (tests/proto/run.sh installs what they need, then runs this).
//
// Prints "ok NAME" or "FAIL NAME: why" a check on stdout (the details of a
// failure go to stderr), then "N passed, N failed"; exits 1 on any failure.
// `check.mjs --only WORD` runs the checks whose name contains WORD.
//
// The checks: both linters pass on the specs and fail on a broken copy; the
// AsyncAPI examples match their schemas; every route of proto/routes.txt is
// in both specs and every served operation or request channel is a route;
// every event the code writes (OUTBOX_EMIT in services/, INSERT INTO outbox
// in scripts/) is in asyncapi.yaml with its data's keys, and every event
// channel there is written by the code. Each coverage check is also run on
// altered input (a route, an event, a key more or less) and must fail.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Parser } from '@asyncapi/parser';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const OPENAPI = join(root, 'proto/openapi.yaml');
const ASYNCAPI = join(root, 'proto/asyncapi.yaml');
const ROUTES = join(root, 'proto/routes.txt');
const REDOCLY = join(here, 'node_modules/@redocly/cli/bin/cli.js');
const REDOCLY_CONFIG = join(here, 'redocly.yaml');
// Answered by the gateway itself, never routed.
const OWN_PATHS = new Set(['/livez', '/readyz', '/metrics']);
const run = promisify(execFile);
const offlineEnv = {
    ...process.env,
    REDOCLY_TELEMETRY: 'off',
    REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
    NO_UPDATE_NOTIFIER: '1',
    NO_COLOR: '1',
};

let scratch; // a temporary folder, made on first use
function tempFile(name, text) {
    scratch ??= mkdtempSync(join(tmpdir(), 'proto-checks-'));
    const path = join(scratch, name);
    writeFileSync(path, text);
    return path;
}

// ---- reading the inputs ---------------------------------------------------

function readYaml(path) {
    return YAML.parse(readFileSync(path, 'utf8'));
}

function parseRoutes(text) {
    const routes = [];
    text.split('\n').forEach((raw, i) => {
        const line = raw.replace(/#.*/, '').trim();
        if (!line || line.startsWith('@errors')) return; // error-body style directives
        const [method, pattern, subject, extra] = line.split(/\s+/);
        if (!subject || extra) throw new Error(`routes.txt line ${i + 1}: want METHOD PATTERN SUBJECT`);
        routes.push({ method, pattern, subject, line: i + 1, params: paramNames(pattern) });
    });
    return routes;
}

function paramNames(template) {
    return [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
}

// The gateway's matcher (services/gateway/routes.c): a parameter takes one or
// more characters up to the next literal character of the pattern, never a
// '/'. Returns the parameters, or null.
function matchPattern(pattern, path) {
    const params = {};
    let p = 0, s = 0;
    while (p < pattern.length) {
        if (pattern[p] === '{') {
            const close = pattern.indexOf('}', p);
            const stop = pattern[close + 1]; // undefined at the end
            const start = s;
            while (s < path.length && path[s] !== '/' && path[s] !== stop) s++;
            if (s === start) return null;
            params[pattern.slice(p + 1, close)] = path.slice(start, s);
            p = close + 1;
        } else {
            if (s === path.length || path[s] !== pattern[p]) return null;
            p++;
            s++;
        }
    }
    return s === path.length ? params : null;
}

// The route the gateway picks for METHOD PATH: the first whose method and
// pattern match.
function routeFor(routes, method, path) {
    for (const r of routes) {
        if (r.method !== method) continue;
        const params = matchPattern(r.pattern, path);
        if (params) return { route: r, params };
    }
    return null;
}

// A local JSON pointer ('#/a/b') into doc.
function pointer(doc, ref) {
    if (!ref.startsWith('#/')) throw new Error(`only local $refs are followed: ${ref}`);
    return ref.slice(2).split('/').reduce((node, part) => {
        const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
        if (node == null || !(key in node)) throw new Error(`unresolved $ref ${ref}`);
        return node[key];
    }, doc);
}

function deref(doc, node) {
    while (node && typeof node === 'object' && typeof node.$ref === 'string') node = pointer(doc, node.$ref);
    return node;
}

// A copy of 'node' with every local $ref replaced by its target.
function resolveAll(doc, node, seen = new Set()) {
    if (Array.isArray(node)) return node.map((n) => resolveAll(doc, n, seen));
    if (!node || typeof node !== 'object') return node;
    if (typeof node.$ref === 'string') {
        if (seen.has(node.$ref)) throw new Error(`circular $ref ${node.$ref}`);
        const target = resolveAll(doc, pointer(doc, node.$ref), new Set([...seen, node.$ref]));
        const { $ref, ...rest } = node;
        return Object.keys(rest).length ? { allOf: [target], ...rest } : target;
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolveAll(doc, v, seen)]));
}

// The properties a schema declares, through allOf and $ref, in order; each
// with the list of the subschemas that declare it.
function schemaProperties(doc, schema, out = new Map()) {
    schema = deref(doc, schema);
    if (!schema || typeof schema !== 'object') return out;
    for (const sub of schema.allOf ?? []) schemaProperties(doc, sub, out);
    for (const [key, sub] of Object.entries(schema.properties ?? {})) {
        if (!out.has(key)) out.set(key, []);
        out.get(key).push(deref(doc, sub));
    }
    return out;
}

function schemaRequired(doc, schema, out = new Set()) {
    schema = deref(doc, schema);
    if (!schema || typeof schema !== 'object') return out;
    for (const sub of schema.allOf ?? []) schemaRequired(doc, sub, out);
    for (const key of schema.required ?? []) out.add(key);
    return out;
}

function constOf(subschemas) {
    return subschemas?.map((s) => s.const).find((c) => c !== undefined);
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function* operations(openapi) {
    for (const [path, item] of Object.entries(openapi.paths ?? {}))
        for (const m of HTTP_METHODS)
            if (item[m]) yield { path, method: m.toUpperCase(), op: item[m] };
}

// ---- events the code writes ------------------------------------------------

function walk(dir, keep) {
    let out = [];
    let names;
    try {
        names = readdirSync(dir);
    } catch {
        return out;
    }
    for (const name of names.sort()) {
        const path = join(dir, name);
        if (name === 'node_modules' || name.startsWith('.')) continue;
        if (statSync(path).isDirectory()) out = out.concat(walk(path, keep));
        else if (keep(name)) out.push(path);
    }
    return out;
}

function lineAt(text, index) {
    return text.slice(0, index).split('\n').length;
}

// C tokens of a macro body or an argument list: string literals (their text),
// identifiers, punctuation. Line continuations and comments are skipped.
function cTokens(text) {
    const tokens = [];
    const re = /\s+|\\\n|\/\*[\s\S]*?\*\/|\/\/[^\n]*|"((?:[^"\\]|\\.)*)"|([A-Za-z_]\w*)|(.)/gs;
    for (const m of text.matchAll(re)) {
        if (m[1] !== undefined) tokens.push({ str: m[1].replace(/\\(.)/g, '$1') });
        else if (m[2] !== undefined) tokens.push({ id: m[2] });
        else if (m[3] !== undefined) tokens.push({ punct: m[3] });
    }
    return tokens;
}

// The #defines of a C file: NAME -> {params (null for an object-like
// macro), body tokens}.
function cDefines(text) {
    const defs = new Map();
    const joined = text.replace(/\\\n/g, ' ');
    for (const m of joined.matchAll(/^[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(\(([^)]*)\))?(.*)$/gm))
        defs.set(m[1], { params: m[2] ? m[3].split(',').map((p) => p.trim()).filter(Boolean) : null,
                         body: cTokens(m[4]) });
    return defs;
}

// Splits a token list at top-level commas, up to the ')' that closes it;
// returns [args, the index after that ')'], or null.
function cArgs(tokens, start) {
    const args = [[]];
    let depth = 0;
    for (let i = start; i < tokens.length; i++) {
        const t = tokens[i];
        if (t.punct === '(') depth++;
        if (t.punct === ')' && depth-- === 0) return [args, i + 1];
        if (t.punct === ',' && depth === 0) args.push([]);
        else args[args.length - 1].push(t);
    }
    return null;
}

// The string a C expression of literals and macros concatenates to, or null.
function cString(tokens, defs, depth = 0) {
    let s = '';
    for (let i = 0; i < tokens.length; i++) {
        const t = tokens[i];
        const def = t.id && depth < 20 ? defs.get(t.id) : undefined;
        if (t.str !== undefined) {
            s += t.str;
        } else if (def && def.params === null) {
            const sub = cString(def.body, defs, depth + 1);
            if (sub === null) return null;
            s += sub;
        } else if (def && tokens[i + 1]?.punct === '(') {
            const found = cArgs(tokens, i + 2);
            if (!found) return null;
            const [args, next] = found;
            const values = args.map((a) => cString(a, defs, depth + 1));
            if (values.some((v) => v === null) || (values.length !== def.params.length && !(def.params.length === 0 && values.length === 1 && !args[0].length)))
                return null;
            const body = def.body.map((b) => (b.id && def.params.includes(b.id) ? { str: values[def.params.indexOf(b.id)] } : b));
            const sub = cString(body, defs, depth + 1);
            if (sub === null) return null;
            s += sub;
            i = next - 1;
        } else {
            return null;
        }
    }
    return s;
}

// Splits 'text' at top-level commas (outside parentheses and SQL quotes).
function splitSql(text) {
    const parts = [];
    let depth = 0, quote = false, cur = '';
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (quote) {
            if (c === "'" && text[i + 1] === "'") cur += text[i++];
            else if (c === "'") quote = false;
        } else if (c === "'") quote = true;
        else if (c === '(') depth++;
        else if (c === ')') depth--;
        else if (c === ',' && depth === 0) {
            parts.push(cur.trim());
            cur = '';
            continue;
        }
        cur += c;
    }
    if (cur.trim()) parts.push(cur.trim());
    return parts;
}

// The text inside the parentheses that open at text[open], or null.
function inParens(text, open) {
    let depth = 0, quote = false;
    for (let i = open; i < text.length; i++) {
        const c = text[i];
        if (quote) {
            if (c === "'") quote = text[i + 1] === "'" ? (i++, true) : false;
        } else if (c === "'") quote = true;
        else if (c === '(') depth++;
        else if (c === ')' && --depth === 0) return text.slice(open + 1, i);
    }
    return null;
}

// A SELECT's list: the text up to its FROM (outside parentheses and quotes).
function selectList(text) {
    let depth = 0, quote = false;
    for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (quote) {
            if (c === "'") quote = text[i + 1] === "'" ? (i++, true) : false;
        } else if (c === "'") quote = true;
        else if (c === '(') depth++;
        else if (c === ')') depth--;
        else if (depth === 0 && /^FROM\b/i.test(text.slice(i, i + 5)) && /\W/.test(text[i - 1] ?? ' ')) return text.slice(0, i);
    }
    return text;
}

function sqlLiteral(expr) {
    const m = /^'((?:[^']|'')*)'$/.exec(expr.trim());
    return m ? m[1].replace(/''/g, "'") : null;
}

// The keys of "json_build_object('k1', v1, 'k2', v2, ...)", in order, or null.
function jsonKeys(expr) {
    const m = /^\s*json_build_object\s*\(/i.exec(expr);
    if (!m) return null;
    const inner = inParens(expr, m[0].length - 1);
    if (inner === null) return null;
    const args = splitSql(inner);
    if (args.length % 2) return null;
    const keys = [];
    for (let i = 0; i < args.length; i += 2) {
        const k = sqlLiteral(args[i]);
        if (k === null) return null;
        keys.push(k);
    }
    return keys;
}

// Every event the code writes: {source, subject, keys, where}; problems for
// what cannot be read. 'extra' adds {name, text} sources (the self-tests).
function codeEvents({ extra = [], drop = () => false } = {}) {
    const events = [], problems = [];
    const files = walk(join(root, 'services'), (n) => /\.(c|h)$/.test(n))
        .map((path) => ({ name: relative(root, path), text: readFileSync(path, 'utf8'), lang: 'c' }))
        .concat(walk(join(root, 'services'), (n) => n.endsWith('.sql'))
            .concat(walk(join(root, 'scripts'), () => true))
            .map((path) => ({ name: relative(root, path), text: readFileSync(path, 'utf8'), lang: 'sql' })))
        .concat(extra);
    for (const f of files) {
        if (f.lang === 'c') {
            const defs = cDefines(f.text);
            for (const m of f.text.matchAll(/\bOUTBOX_EMIT\s*\(/g)) {
                const where = `${f.name}:${lineAt(f.text, m.index)}`;
                if (/#\s*define\s*$/.test(f.text.slice(f.text.lastIndexOf('\n', m.index) + 1, m.index))) continue;
                const [args] = cArgs(cTokens(f.text.slice(m.index + m[0].length)), 0) ?? [[]];
                const [source, subject, , data] = args.map((a) => cString(a, defs));
                if (args.length !== 5 || source === null || subject === null)
                    problems.push(`${where}: cannot read this OUTBOX_EMIT's source and subject`);
                else events.push({ source, subject, keys: data === null ? null : jsonKeys(data), where });
            }
        } else {
            for (const m of f.text.matchAll(/INSERT\s+INTO\s+outbox\s*\(([^)]*)\)\s*SELECT\s/gi)) {
                const where = `${f.name}:${lineAt(f.text, m.index)}`;
                const cols = m[1].split(',').map((c) => c.trim().toLowerCase());
                const values = splitSql(selectList(f.text.slice(m.index + m[0].length)));
                const get = (col) => values[cols.indexOf(col)];
                const source = sqlLiteral(get('source') ?? '');
                const subject = sqlLiteral(get('subject') ?? '');
                if (source === null || subject === null)
                    problems.push(`${where}: cannot read this outbox insert's source and subject`);
                else events.push({ source, subject, keys: jsonKeys(get('data') ?? ''), where });
            }
        }
    }
    return { events: events.filter((e) => !drop(e)), problems };
}

// ---- the coverage checks (pure: they take their inputs) ---------------------

// routes.txt <-> openapi.yaml. Returns the problems.
function routesVsOpenapi(routes, openapi) {
    const problems = [], covered = new Set();
    for (const { path, method, op } of operations(openapi)) {
        const name = `${method} ${path}`;
        const status = op['x-status'];
        if (status !== undefined && status !== 'planned') {
            problems.push(`${name}: x-status is '${status}'; only 'planned' is known`);
            continue;
        }
        if (OWN_PATHS.has(path)) {
            if (method !== 'GET' || status) problems.push(`${name}: the gateway's own ${path} is documented as a served GET`);
            continue;
        }
        // Each {param} becomes a marker; the route must capture each marker
        // whole, under the same name. A route parameter the path fills with
        // literal text (the {action} of /api/items/{id}:archive) is fine.
        const names = paramNames(path);
        const mark = (n) => `\u0001${n}\u0002`;
        const found = routeFor(routes, method, path.replace(/\{([^}]+)\}/g, (_, n) => mark(n)));
        if (status === 'planned' && !found) continue;
        if (status === 'planned')
            problems.push(`${name} is routed now (routes.txt line ${found.route.line}: ${found.route.pattern}): drop its x-status: planned`);
        if (!found) {
            problems.push(`${name} is in openapi.yaml but no route of routes.txt serves it`);
            continue;
        }
        const r = found.route;
        const bad = [];
        for (const [rname, value] of Object.entries(found.params)) {
            const whole = names.find((n) => value === mark(n));
            if (whole !== undefined && whole !== rname) bad.push(`{${whole}} is {${rname}} in routes.txt`);
            else if (whole === undefined && value.includes('\u0001')) bad.push(`{${rname}} of routes.txt does not line up with the path's parameters`);
        }
        for (const n of names)
            if (!Object.values(found.params).includes(mark(n))) bad.push(`{${n}} is no parameter of ${r.pattern}`);
        if (bad.length) problems.push(`${name} (routes.txt line ${r.line}: ${r.pattern}): ${bad.join('; ')}`);
        else covered.add(r);
    }
    for (const r of routes)
        if (!covered.has(r)) problems.push(`${r.method} ${r.pattern} (routes.txt line ${r.line}) is not in openapi.yaml`);
    return problems;
}

// routes.txt <-> asyncapi.yaml's request channels.
function routesVsAsyncapi(routes, asyncapi) {
    const problems = [];
    const channels = Object.entries(asyncapi.channels ?? {});
    const ops = Object.entries(asyncapi.operations ?? {});
    const bySubject = new Map();
    for (const r of routes) {
        if (!bySubject.has(r.subject)) bySubject.set(r.subject, []);
        bySubject.get(r.subject).push(r);
    }
    for (const [subject, rs] of bySubject) {
        const where = `${subject} (routes.txt line ${rs.map((r) => r.line).join(', ')})`;
        const found = channels.filter(([, c]) => c.address === subject);
        if (found.length !== 1) {
            problems.push(found.length ? `${where}: ${found.length} channels have this address` : `${where} is not in asyncapi.yaml`);
            continue;
        }
        const [id, channel] = found[0];
        if (channel['x-status']) problems.push(`${where} is routed now: drop the x-status of channel ${id} and its operation`);
        const want = rs.map((r) => `${r.method} ${r.pattern}`).sort();
        const have = [...(channel['x-routes'] ?? [])].sort();
        if (JSON.stringify(want) !== JSON.stringify(have))
            problems.push(`${where}: the channel's x-routes are [${have.join(', ')}], routes.txt has [${want.join(', ')}]`);
        const service = subject.split('.')[0];
        const receivers = ops.filter(([, o]) => o.action === 'receive' && deref(asyncapi, o.channel) === channel);
        if (receivers.length !== 1) problems.push(`${where}: want one receive operation on channel ${id}, found ${receivers.length}`);
        for (const [oid, o] of receivers) {
            if ((o['x-status'] ?? null) !== (channel['x-status'] ?? null))
                problems.push(`${where}: channel ${id} and operation ${oid} disagree on x-status`);
            if (o.bindings?.nats?.queue !== service)
                problems.push(`${where}: operation ${oid} must receive in queue group '${service}'`);
            if (!o.reply || deref(asyncapi, o.reply.channel)?.address !== null)
                problems.push(`${where}: operation ${oid} must reply to the request's inbox (a channel with address null)`);
        }
        // Param-<name> headers: one per parameter of the subject's routes,
        // required when every route has it.
        const every = rs[0].params.filter((p) => rs.every((r) => r.params.includes(p)));
        const any = [...new Set(rs.flatMap((r) => r.params))];
        for (const [mid, message] of Object.entries(channel.messages ?? {})) {
            const headers = deref(asyncapi, message)?.headers;
            const props = [...schemaProperties(asyncapi, headers).keys()].filter((k) => k.startsWith('Param-'));
            const req = [...schemaRequired(asyncapi, headers)].filter((k) => k.startsWith('Param-'));
            const fmt = (l) => `[${[...l].sort().join(', ')}]`;
            if (fmt(props) !== fmt(any.map((p) => `Param-${p}`)) || fmt(req) !== fmt(every.map((p) => `Param-${p}`)))
                problems.push(`${where}: message ${mid}'s headers declare ${fmt(props)} (required ${fmt(req)}); the routes' parameters are ${fmt(any)} (in every route ${fmt(every)})`);
        }
    }
    for (const [id, c] of channels)
        if (c['x-routes'] && !c['x-status'] && !bySubject.has(c.address))
            problems.push(`channel ${id} (${c.address}) has x-routes but no route of routes.txt uses its subject`);
    return problems;
}

// The events the code writes <-> asyncapi.yaml's events.* channels.
function eventsVsAsyncapi(code, asyncapi) {
    const problems = [...code.problems];
    const channels = Object.entries(asyncapi.channels ?? {}).filter(([, c]) => String(c.address).startsWith('events.'));
    const ops = Object.entries(asyncapi.operations ?? {});
    const written = new Set(code.events.map((e) => e.subject));
    for (const e of code.events) {
        const where = `${e.subject} (${e.where})`;
        if (!new RegExp(`^events\\.${e.source}\\.[a-z0-9_-]+\\.[a-z0-9_-]+$`).test(e.subject))
            problems.push(`${where}: a subject of source '${e.source}' is events.${e.source}.<thing>.<action>`);
        const found = channels.filter(([, c]) => c.address === e.subject);
        if (found.length !== 1) {
            problems.push(`${where} is written by the code but is not in asyncapi.yaml`);
            continue;
        }
        const [id, channel] = found[0];
        if (channel['x-status']) problems.push(`${where} is written now: drop the x-status of channel ${id} and its operation`);
        const senders = ops.filter(([, o]) => o.action === 'send' && deref(asyncapi, o.channel) === channel);
        if (senders.length !== 1) problems.push(`${where}: want one send operation on channel ${id}, found ${senders.length}`);
        for (const [oid, o] of senders)
            if (o['x-service'] !== e.source) problems.push(`${where}: operation ${oid}'s x-service is '${o['x-service']}', the code's source is '${e.source}'`);
        for (const [mid, m] of Object.entries(channel.messages ?? {})) {
            const props = schemaProperties(asyncapi, deref(asyncapi, m).payload);
            const type = constOf(props.get('type')), source = constOf(props.get('source'));
            if (type !== e.subject.slice('events.'.length) || source !== e.source)
                problems.push(`${where}: message ${mid} says type '${type}' and source '${source}'`);
            if (e.keys === null) {
                problems.push(`${where}: its data is not a json_build_object of literal keys; cannot compare it`);
                continue;
            }
            const data = props.get('data') ?? [];
            const keys = [...data.reduce((acc, s) => schemaProperties(asyncapi, s, acc), new Map()).keys()];
            const required = data.reduce((acc, s) => schemaRequired(asyncapi, s, acc), new Set());
            if (keys.join(',') !== e.keys.join(','))
                problems.push(`${where}: the data's keys are [${e.keys.join(', ')}] in the SQL, [${keys.join(', ')}] in message ${mid}`);
            else if (!e.keys.every((k) => required.has(k)))
                problems.push(`${where}: message ${mid} must require every key of the data`);
        }
    }
    for (const [id, c] of channels) {
        const senders = ops.filter(([, o]) => deref(asyncapi, o.channel) === c);
        if (senders.some(([, o]) => (o['x-status'] ?? null) !== (c['x-status'] ?? null)))
            problems.push(`channel ${id} and its operation disagree on x-status`);
        if (c['x-status'] !== undefined && c['x-status'] !== 'planned')
            problems.push(`channel ${id}: x-status is '${c['x-status']}'; only 'planned' is known`);
        else if (!c['x-status'] && !written.has(c.address))
            problems.push(`channel ${id} (${c.address}) is in asyncapi.yaml but no code writes it (mark it x-status: planned?)`);
    }
    return problems;
}

// Every example of every message matches the message's schemas.
function asyncapiExamples(asyncapi) {
    const problems = [];
    const ajv = new Ajv({ strict: false, allErrors: false });
    addFormats(ajv);
    const seen = new Set();
    const messages = [];
    for (const [cid, c] of Object.entries(asyncapi.channels ?? {}))
        for (const [mid, m] of Object.entries(c.messages ?? {})) messages.push([`${cid}/${mid}`, deref(asyncapi, m)]);
    for (const [mid, m] of Object.entries(asyncapi.components?.messages ?? {})) messages.push([mid, m]);
    for (const [name, m] of messages) {
        if (seen.has(m)) continue;
        seen.add(m);
        for (const [i, ex] of (m.examples ?? []).entries()) {
            for (const part of ['headers', 'payload']) {
                if (ex[part] === undefined || m[part] === undefined) continue;
                const validate = ajv.compile(resolveAll(asyncapi, m[part]));
                if (!validate(ex[part]))
                    problems.push(`message ${name}, example ${ex.name ?? i}: ${part}${validate.errors[0].instancePath} ${validate.errors[0].message}`);
            }
        }
    }
    return problems;
}

// ---- the linters ------------------------------------------------------------

async function redoclyLint(file) {
    let stdout = '', code = 0;
    try {
        ({ stdout } = await run(process.execPath, [REDOCLY, 'lint', '--config', REDOCLY_CONFIG, '--format=json', file],
            { env: offlineEnv, cwd: here, maxBuffer: 64 << 20, timeout: 60000 }));
    } catch (e) {
        if (e.stdout === undefined || e.killed) throw e;
        stdout = e.stdout;
        code = e.code;
    }
    const report = JSON.parse(stdout);
    return { code, problems: report.problems.filter((p) => !p.ignored), totals: report.totals };
}

function describeRedocly(p) {
    return `${p.ruleId} at ${p.location?.[0]?.pointer ?? '?'}: ${p.message}`;
}

async function asyncapiDiagnostics(text, source) {
    const parser = new Parser();
    const { diagnostics } = await parser.parse(text, { source });
    // Severity: 0 error, 1 warning, 2 information, 3 hint.
    return diagnostics.filter((d) => d.severity <= 1);
}

function describeDiagnostic(d) {
    return `${d.code} at ${d.path.join('/') || '/'}: ${d.message}`;
}

// ---- the checks -------------------------------------------------------------

const checks = [];
function check(name, fn) {
    checks.push({ name, fn });
}

// A check's verdict, as opposed to a crash of the check itself.
class Failure extends Error {
    constructor(message, details = []) {
        super(message);
        this.details = details;
    }
}

// Passes when there is no problem; the problems are the failure.
function failIf(problems) {
    if (problems.length) throw new Failure(problems[0], problems);
}

const inputs = {
    get routesText() { return (this._rt ??= readFileSync(ROUTES, 'utf8')); },
    get routes() { return (this._r ??= parseRoutes(this.routesText)); },
    get openapi() { return (this._o ??= readYaml(OPENAPI)); },
    get asyncapiText() { return (this._at ??= readFileSync(ASYNCAPI, 'utf8')); },
    get asyncapi() { return (this._a ??= YAML.parse(this.asyncapiText)); },
    get code() { return (this._c ??= codeEvents()); },
};

check('openapi-lint', async () => {
    const { code, problems } = await redoclyLint(OPENAPI);
    failIf(problems.map(describeRedocly));
    if (code !== 0) throw new Failure(`redocly exited ${code} with no problem listed`);
});

check('openapi-lint-fails-on-broken-copy', async () => {
    const doc = readYaml(OPENAPI);
    delete doc.info.title; // required
    const [first] = operations(doc);
    first.op.parameters = [...(first.op.parameters ?? []), { name: 'x', in: 'nowhere', schema: { type: 'string' } }];
    doc.paths['/proto-check/{undeclared}'] = {
        get: { summary: 's', description: 'd', operationId: 'protoCheckBroken', tags: [doc.tags?.[0]?.name],
               responses: { 200: { description: 'd', content: { 'application/json': { schema: { type: 'integer' }, example: 'x' } } } } },
    };
    const { code, problems } = await redoclyLint(tempFile('openapi.yaml', YAML.stringify(doc)));
    const rules = new Set(problems.map((p) => p.ruleId));
    const want = ['struct', 'path-parameters-defined', 'no-invalid-media-type-examples'];
    const missed = want.filter((r) => !rules.has(r));
    if (code === 0 || missed.length)
        throw new Failure(`the linter let through a broken copy (exit ${code}; rules not reported: ${missed.join(', ') || 'none'})`);
});

check('asyncapi-validate', async () => {
    failIf((await asyncapiDiagnostics(inputs.asyncapiText, ASYNCAPI)).map(describeDiagnostic));
});

check('asyncapi-examples', async () => failIf(asyncapiExamples(inputs.asyncapi)));

check('asyncapi-validate-fails-on-broken-copy', async () => {
    const doc = YAML.parse(inputs.asyncapiText);
    const [first] = Object.keys(doc.operations);
    doc.operations[first].action = 'publish'; // AsyncAPI 2's word, not 3's
    doc.operations.protoCheckBroken = { action: 'send', channel: { $ref: '#/channels/protoCheckMissing' } };
    const errors = await asyncapiDiagnostics(YAML.stringify(doc), tempFile('asyncapi.yaml', ''));
    const action = errors.some((d) => d.path.join('/') === `operations/${first}/action`);
    const ref = errors.some((d) => d.message.includes('protoCheckMissing'));
    if (!action || !ref)
        throw new Failure(`the parser let through a broken copy (bad action reported: ${action}, missing channel reported: ${ref})`);
    // And an example that does not match its schema.
    const bad = YAML.parse(inputs.asyncapiText);
    const target = Object.values(bad.components?.messages ?? {}).find((m) =>
        m.examples?.some((e) => e.payload && typeof e.payload === 'object') &&
        Object.keys(deref(bad, m.payload) ?? {}).some((k) => k === 'type' || k === 'allOf'));
    if (!target) throw new Failure('no message example to break');
    target.examples.find((e) => e.payload && typeof e.payload === 'object').payload = 12345;
    if (!asyncapiExamples(bad).length) throw new Failure('the example check let through a payload of 12345');
});

check('routes-in-openapi', async () => failIf(routesVsOpenapi(inputs.routes, inputs.openapi)));

check('routes-in-asyncapi', async () => failIf(routesVsAsyncapi(inputs.routes, inputs.asyncapi)));

check('events-in-asyncapi', async () => failIf(eventsVsAsyncapi(inputs.code, inputs.asyncapi)));

// The problems 'altered' has that 'baseline' has not: what an injected fault
// caused, whatever the real inputs' state.
function caused(altered, baseline, mention) {
    return altered.filter((p) => !baseline.includes(p) && (mention === undefined || p.includes(mention)));
}

check('coverage-fails-on-unlisted-route', async () => {
    const base = { o: routesVsOpenapi(inputs.routes, inputs.openapi), a: routesVsAsyncapi(inputs.routes, inputs.asyncapi) };
    const tries = [
        ['a route added', parseRoutes(`${inputs.routesText}\nPUT /proto-check/{thing}:{verb} library.proto_check.act\n`),
         '/proto-check/{thing}:{verb}', 'library.proto_check.act'],
        ['a path parameter renamed', parseRoutes(inputs.routesText.replace(/\{id\}/, '{proto_check_id}')),
         '{proto_check_id}', undefined],
        [`${inputs.routes[0].method} ${inputs.routes[0].pattern} gone`, inputs.routes.slice(1),
         `${inputs.routes[0].method} ${inputs.routes[0].pattern}`, inputs.routes[0].subject],
    ];
    for (const [what, routes, inOpenapi, inAsyncapi] of tries) {
        if (!caused(routesVsOpenapi(routes, inputs.openapi), base.o, inOpenapi).length)
            throw new Failure(`routes-in-openapi passed with ${what} in routes.txt`);
        if (!caused(routesVsAsyncapi(routes, inputs.asyncapi), base.a, inAsyncapi).length)
            throw new Failure(`routes-in-asyncapi passed with ${what} in routes.txt`);
    }
});

check('coverage-fails-on-unlisted-event', async () => {
    const base = eventsVsAsyncapi(inputs.code, inputs.asyncapi);
    const emit = 'X(ZAP, "WITH e AS (" OUTBOX_EMIT("tracker", "events.tracker.item.zapped", "$1", ' +
        '"json_build_object(\'id\', 1)", "x") ")")\n';
    const more = codeEvents({ extra: [{ name: 'proto-check.h', text: emit, lang: 'c' }] });
    if (!caused(eventsVsAsyncapi(more, inputs.asyncapi), base, 'events.tracker.item.zapped').length)
        throw new Failure('events-in-asyncapi passed with an event asyncapi.yaml lacks');
    const served = new Set(Object.values(inputs.asyncapi.channels ?? {}).filter((c) => !c['x-status']).map((c) => c.address));
    const first = inputs.code.events.find((e) => served.has(e.subject));
    if (!first) throw new Failure('the code writes no event that asyncapi.yaml lists as served');
    const fewer = codeEvents({ drop: (e) => e.subject === first.subject });
    if (!caused(eventsVsAsyncapi(fewer, inputs.asyncapi), base, first.subject).length)
        throw new Failure(`events-in-asyncapi passed with ${first.subject} no longer written`);
    const rekeyed = codeEvents();
    rekeyed.events = rekeyed.events.map((e) => (e.subject === first.subject ? { ...e, keys: [...(e.keys ?? []), 'proto_check_extra'] } : e));
    if (!caused(eventsVsAsyncapi(rekeyed, inputs.asyncapi), base, 'proto_check_extra').length)
        throw new Failure(`events-in-asyncapi passed with a key more in the data of ${first.subject}`);
});

// ---- running them -----------------------------------------------------------

const only = process.argv.indexOf('--only') >= 0 ? process.argv[process.argv.indexOf('--only') + 1] ?? '' : null;
const chosen = checks.filter((c) => only === null || c.name.includes(only));
if (!chosen.length) {
    console.log(`FAIL only: no check's name contains '${only}'`);
    console.log('0 passed, 1 failed');
    process.exit(1);
}
const results = await Promise.all(chosen.map(async (c) => {
    try {
        await c.fn();
        return { name: c.name, ok: true };
    } catch (e) {
        if (e instanceof Failure) return { name: c.name, ok: false, why: e.message, details: e.details };
        return { name: c.name, ok: false, why: `the check crashed: ${e.message.split('\n')[0]}`, details: [String(e.stack).split('\n').slice(0, 12).join('\n')] };
    }
}));
let passed = 0, failed = 0;
for (const r of results) {
    if (r.ok) {
        passed++;
        console.log(`ok ${r.name}`);
    } else {
        failed++;
        const more = r.details.length > 1 ? ` (and ${r.details.length - 1} more, on stderr)` : '';
        console.log(`FAIL ${r.name}: ${r.why.split('\n')[0]}${more}`);
        for (const d of r.details) console.error(`  ${r.name}: ${d}`);
    }
}
if (scratch) rmSync(scratch, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
