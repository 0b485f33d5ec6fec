// The container image, without a Docker engine: the Dockerfile's structure,
// and its scripts (deploy/k8s/image/) run here on the CMake build the way
// the build stage runs them.
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

// Dockerfile instructions: [{op, args, stage}] (continuation lines joined).
export function parseDockerfile(text) {
    const out = [];
    let stage = -1;
    const lines = text.replace(/\\\n/g, ' ').split('\n');
    for (const raw of lines) {
        const line = raw.trim();
        if (!line || line.startsWith('#')) continue;
        const m = /^(\w+)\s+(.*)$/.exec(line);
        if (!m) continue;
        const op = m[1].toUpperCase();
        if (op === 'FROM') stage++;
        out.push({ op, args: m[2].trim(), stage });
    }
    return out;
}

// .dockerignore patterns (the simple forms used here: NAME, DIR, **/NAME, NAME-*).
function ignored(patterns, rel) {
    return patterns.some((p) => {
        let re = '';
        for (let i = 0; i < p.length; i++) {
            if (p.startsWith('**/', i)) { re += '(.*/)?'; i += 2; } else if (p[i] === '*') re += '[^/]*';
            else if (p[i] === '?') re += '[^/]';
            else re += p[i].replace(/[.+^${}()|[\]\\]/g, '\\$&');
        }
        return new RegExp(`^${re}(/.*)?$`).test(rel);
    });
}

// Problems of a Dockerfile (and its .dockerignore) for this repository.
export function dockerfileProblems(text, ignoreText, root, uid) {
    const problems = [];
    const ins = parseDockerfile(text);
    const froms = ins.filter((i) => i.op === 'FROM');
    if (froms.length < 2) problems.push('not multi-stage (a build stage and a runtime stage)');
    for (const f of froms) {
        const image = f.args.split(/\s+/)[0];
        if (image !== 'debian:bookworm-slim' && !froms.some((g) => g.args.split(/\s+AS\s+/i)[1] === image)) {
            problems.push(`FROM ${image}: every stage starts from debian:bookworm-slim`);
        }
    }
    const last = froms.length - 1;
    const final = ins.filter((i) => i.stage === last);
    const build = ins.filter((i) => i.stage < last);
    if (!build.some((i) => i.op === 'RUN' && /\bcmake\b.*--build/.test(i.args))) problems.push('the build stage does not build with CMake');
    if (!build.some((i) => i.op === 'RUN' && /collect\.sh/.test(i.args))) problems.push('the build stage does not run deploy/k8s/image/collect.sh');
    const user = final.filter((i) => i.op === 'USER').pop();
    if (!user) problems.push('the runtime stage sets no USER (it would run as root)');
    else {
        const [u, g] = user.args.split(':');
        if (!/^\d+$/.test(u) || Number(u) === 0) problems.push(`USER ${user.args}: a numeric non-root uid (runAsNonRoot needs a number)`);
        else if (uid !== undefined && Number(u) !== uid) problems.push(`USER ${u} but the manifests run the image as ${uid}`);
        if (g !== undefined && (!/^\d+$/.test(g) || Number(g) === 0)) problems.push(`USER ${user.args}: group ${g} is not a numeric non-root gid`);
    }
    const entry = final.filter((i) => i.op === 'ENTRYPOINT').pop();
    if (!entry || !entry.args.startsWith('[')) problems.push('ENTRYPOINT is not in exec form (SIGTERM would go to a shell)');
    for (const i of final) {
        if (i.op === 'RUN' && /\b(build-essential|cmake|gcc|[\w.+-]+-dev)\b/.test(i.args)) problems.push(`the runtime stage installs build tools: ${i.args.slice(0, 80)}`);
        if (i.op === 'COPY' && !/--from=/.test(i.args)) {
            const parts = i.args.split(/\s+/).filter((x) => !x.startsWith('--'));
            for (const src of parts.slice(0, -1)) {
                if (!existsSync(path.join(root, src))) problems.push(`COPY ${src}: no such file`);
                else if (ignored(patterns(ignoreText), src)) problems.push(`COPY ${src}: excluded by .dockerignore`);
            }
        }
    }
    if (/:latest\b/.test(text)) problems.push('uses a :latest image');
    const pats = patterns(ignoreText);
    for (const must of ['.git', 'build', '.data', 'deploy/k8s/overlays/prod/credentials.env', 'tests/k8s/node_modules']) {
        if (!ignored(pats, must)) problems.push(`.dockerignore lets ${must} into the build context`);
    }
    for (const need of ['CMakeLists.txt', 'lib', 'services', 'proto', 'scripts/migrate.sh', 'deploy/k8s/image/collect.sh', 'tests/unit']) {
        if (ignored(pats, need)) problems.push(`.dockerignore excludes ${need}, which the build needs`);
    }
    return problems;
}

function patterns(text) {
    return text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

export function readText(file) {
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
}
