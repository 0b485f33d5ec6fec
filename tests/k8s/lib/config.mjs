// The configuration table in the code against the manifests: for each
// container of our image, the variables its binary reads (`BINARY --config`:
// NAME<TAB>DEFAULT<TAB>DESCRIPTION a line) must be exactly the variables the
// manifests give it (ConfigMap keys through envFrom/valueFrom, Secret keys),
// apart from the ones read by the libraries themselves listed below.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { containerEnv, ourProgram } from './policy.mjs';

// Read by libpq itself, not by our configuration table: allowed on
// containers whose binary reads PGHOST (it connects to PostgreSQL).
export const LIBPQ_VARS = new Set(['PGPASSWORD', 'PGSSLMODE', 'PGSSLROOTCERT', 'PGCONNECT_TIMEOUT', 'PGAPPNAME']);
// Read by nats.c itself: none (credentials travel inside NATS_URL).
export const NATS_VARS = new Set();

// name -> Map(variable -> default), from the binary; null if not built.
export function configTable(binDir, name) {
    const bin = path.join(binDir, name);
    if (!existsSync(bin)) return null;
    const out = execFileSync(bin, ['--config'], { encoding: 'utf8', timeout: 10000 });
    const table = new Map();
    for (const line of out.split('\n')) {
        if (!line.trim()) continue;
        const [varName, def = ''] = line.split('\t');
        table.set(varName, def);
    }
    return table;
}

// Problems of one rendered overlay, per program: {program, where, problems[], skipped?}.
// tables: Map(program -> Map|null); sourceHas(program): services/<program> exists.
export function checkConfig(docs, tables, sourceHas, images = new Set(['elwing'])) {
    const results = [];
    for (const w of docs.filter((d) => ['Deployment', 'StatefulSet', 'Job'].includes(d.kind))) {
        for (const c of w.spec.template.spec.containers || []) {
            const program = ourProgram(c, images);
            if (!program || program === 'migrate') continue;
            const where = `${w.kind}/${w.metadata.name}`;
            const table = tables.get(program);
            if (!table) {
                if (sourceHas(program)) {
                    results.push({ program, where, problems: [`services/${program} exists but its binary was not built, so its configuration table cannot be read`] });
                } else {
                    results.push({ program, where, problems: [], skipped: `no services/${program} yet` });
                }
                continue;
            }
            const env = containerEnv(c, docs);
            const problems = [];
            for (const [name, def] of table) {
                if (!env.has(name)) problems.push(`${program} reads ${name} (default ${JSON.stringify(def)}) but the manifests do not set it`);
                else {
                    const v = env.get(name).value;
                    if (v !== undefined && /^-?\d+$/.test(def) && !/^-?\d+$/.test(v)) problems.push(`${name}=${JSON.stringify(v)} is not an integer (default ${def})`);
                }
            }
            const libpq = table.has('PGHOST') ? LIBPQ_VARS : new Set();
            for (const [name, v] of env) {
                if (table.has(name) || libpq.has(name) || NATS_VARS.has(name)) continue;
                const src = v.from ? ` (from ${v.from === 'secret' ? 'Secret' : 'ConfigMap'} ${v.name})` : '';
                problems.push(`the manifests set ${name}${src} but ${program} does not read it`);
            }
            results.push({ program, where, problems });
        }
    }
    return results;
}
