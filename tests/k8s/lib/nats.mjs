// The rendered nats.conf, run for real: the local nats-server starts it (as
// many nodes as the StatefulSet has, routes and listen addresses moved to
// loopback ports, the store to a temp folder), the cluster must report
// healthy with JetStream, and the two logins must behave: the services' user
// creates the stream and publishes events, the events user reads them (with
// the events tool when it is built) and is refused anything else.
import { spawn, execFile } from 'node:child_process';
import net from 'node:net';
import http from 'node:http';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
        s.on('error', reject);
    });
}

function get(port, p) {
    return new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: p, timeout: 2000 }, (res) => {
            let body = '';
            res.on('data', (c) => { body += c; });
            res.on('end', () => resolve({ status: res.statusCode, body }));
        });
        req.on('error', () => resolve({ status: 0, body: '' }));
        req.on('timeout', () => { req.destroy(); resolve({ status: 0, body: '' }); });
    });
}

// One NATS client session over the text protocol: sends `lines` after
// CONNECT, returns everything the server said once `until` matches (or the
// connection closes, or the timeout passes).
export function natsSession(port, { user, pass }, lines, { until = /PONG\r\n[\s\S]*PONG\r\n/, timeoutMs = 5000 } = {}) {
    return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        let text = '';
        let sent = false;
        const done = () => { clearTimeout(timer); sock.destroy(); resolve(text); };
        const timer = setTimeout(done, timeoutMs);
        sock.on('data', (d) => {
            text += d.toString('latin1');
            if (!sent && text.includes('INFO ')) {
                sent = true;
                const connect = { verbose: false, pedantic: false, user, pass, lang: 'test', version: '0', protocol: 1, headers: true, no_responders: true };
                sock.write(`CONNECT ${JSON.stringify(connect)}\r\nPING\r\n${lines.join('\r\n')}${lines.length ? '\r\n' : ''}PING\r\n`);
            }
            if (until.test(text)) done();
        });
        sock.on('error', done);
        sock.on('close', done);
    });
}
const pub = (subject, reply, payload) => `PUB ${subject} ${reply} ${Buffer.byteLength(payload)}\r\n${payload}`;

// Runs the checks; returns [{name, ok, why}].
export async function checkNats(overlay, conf, replicas, env, { natsServer = 'nats-server', eventsBin = null } = {}) {
    const results = [];
    const add = (name, ok, why = '') => results.push({ name: `nats ${overlay}: ${name}`, ok, why });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'elwing-nats-'));
    const procs = [];
    try {
        const nodes = [];
        for (let i = 0; i < replicas; i++) nodes.push({ client: await freePort(), cluster: await freePort(), monitor: await freePort() });
        for (let i = 0; i < replicas; i++) {
            let c = conf
                .replace(/^(\s*listen:\s*)0\.0\.0\.0:4222/m, `$1127.0.0.1:${nodes[i].client}`)
                .replace(/^(\s*http:\s*)0\.0\.0\.0:8222/m, `$1127.0.0.1:${nodes[i].monitor}`)
                .replace(/^(\s*listen:\s*)0\.0\.0\.0:6222/m, `$1127.0.0.1:${nodes[i].cluster}`)
                .replace(/\/var\/run\/nats\//g, `${dir}/run${i}-`)
                .replace(/^(\s*store_dir:\s*)\/data/m, `$1${dir}/data${i}`);
            for (let j = 0; j < replicas; j++) c = c.replaceAll(`nats-${j}.nats-headless:6222`, `127.0.0.1:${nodes[j].cluster}`);
            if (/nats-\d+\.nats-headless/.test(c)) { add('routes', false, 'a route names a node the StatefulSet does not have'); return results; }
            const file = path.join(dir, `nats${i}.conf`);
            writeFileSync(file, c);
            const p = spawn(natsServer, ['-c', file], { env: { ...process.env, ...env, POD_NAME: `nats-${i}` }, stdio: ['ignore', 'ignore', 'pipe'] });
            p.log = '';
            p.stderr.on('data', (d) => { p.log += d; });
            procs.push(p);
        }
        // healthy: every node, JetStream included (the cluster has met)
        const deadline = Date.now() + 20000;
        let healthy = false;
        while (Date.now() < deadline) {
            const r = await Promise.all(nodes.map((n) => get(n.monitor, '/healthz')));
            if (r.every((x) => x.status === 200)) { healthy = true; break; }
            if (procs.some((p) => p.exitCode !== null)) break;
            await sleep(200);
        }
        if (!healthy) {
            const last = await Promise.all(nodes.map((n) => get(n.monitor, '/healthz')));
            const log = procs.map((p, i) => `nats-${i}${p.exitCode !== null ? ` exited ${p.exitCode}` : ''}: ${p.log.split('\n').filter((l) => /\[(ERR|FTL|WRN)\]/.test(l)).slice(-2).join(' | ')}`);
            add(`${replicas} node(s) start and report healthy with JetStream`, false,
                `not healthy in 20 s: ${last.map((r, i) => `nats-${i} ${r.status} ${r.body.trim()}`).join('; ')}; ${log.join('; ')}`);
            return results;
        }
        add(`${replicas} node(s) start and report healthy with JetStream`, true);

        const port = nodes[0].client;
        const svc = { user: env.NATS_USER, pass: env.NATS_PASSWORD };
        const sub = { user: env.NATS_EVENTS_USER, pass: env.NATS_EVENTS_PASSWORD };
        const stream = env.EVENTS_STREAM;

        // the services' login creates the stream (as the services do at start)
        const create = JSON.stringify({ name: stream, subjects: ['events.>'], num_replicas: Number(env.EVENTS_REPLICAS), storage: 'file' });
        let created = '';
        for (let i = 0; i < 30; i++) {
            created = await natsSession(port, svc, ['SUB _INBOX.c 1', pub(`$JS.API.STREAM.CREATE.${stream}`, '_INBOX.c', create)], { until: /MSG _INBOX\.c 1 \d+\r\n.*\r\n/ });
            if (/"config"/.test(created)) break;
            await sleep(300);
        }
        add(`the services' user creates stream ${stream} with ${env.EVENTS_REPLICAS} replica(s)`, /"config"/.test(created), created.split('\r\n').filter((l) => /error|ERR/.test(l)).join(' ').slice(0, 300));

        const acked = await natsSession(port, svc, ['SUB _INBOX.p 1', pub('events.test.created', '_INBOX.p', '{"test":1}')], { until: /MSG _INBOX\.p 1 \d+\r\n.*\r\n/ });
        add("the services' user publishes an event (PubAck)", /"seq":1/.test(acked), acked.slice(-200));

        const denied = await natsSession(port, sub, [pub('events.test.forged', '', '{}')], { until: /-ERR/ });
        add('the events user cannot publish events', /Permissions Violation for Publish/.test(denied), denied.slice(-200));
        const deleteDenied = await natsSession(port, sub, ['SUB _INBOX.d 1', pub(`$JS.API.STREAM.DELETE.${stream}`, '_INBOX.d', '')], { until: /-ERR|MSG/ });
        add('the events user cannot delete the stream', /Permissions Violation for Publish/.test(deleteDenied), deleteDenied.slice(-200));
        const badLogin = await natsSession(port, { user: sub.user, pass: 'wrong' }, [], { until: /-ERR/ });
        add('a wrong password is refused', /Authorization Violation/.test(badLogin), badLogin.slice(-200));

        if (eventsBin && existsSync(eventsBin)) {
            const url = `nats://${sub.user}:${sub.pass}@127.0.0.1:${port}`;
            const out = await new Promise((resolve) => {
                execFile(eventsBin, ['--url', url, '--stream', stream, '--count', '1', '--idle-ms', '5000'], { timeout: 15000 }, (err, stdout, stderr) => resolve({ err, stdout, stderr }));
            });
            add('the events user reads the event with the events tool', !out.err && /"test"\s*:\s*1/.test(out.stdout), `${out.err?.message || ''} ${out.stderr}`.trim().slice(0, 300));
        } else {
            const info = await natsSession(port, sub, ['SUB _INBOX.i 1', pub(`$JS.API.STREAM.INFO.${stream}`, '_INBOX.i', '')], { until: /MSG _INBOX\.i 1 \d+\r\n.*\r\n|-ERR/ });
            add('the events user reads the stream info (events tool not built)', /"config"/.test(info), info.slice(-200));
        }
        return results;
    } finally {
        for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
        await Promise.all(procs.map((p) => (p.exitCode !== null ? null : new Promise((r) => p.on('exit', r)))));
        rmSync(dir, { recursive: true, force: true });
    }
}
