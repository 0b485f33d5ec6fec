// Schema check of rendered documents against the Kubernetes API, offline:
// kubernetes-models' JSON schemas (types, required fields, enums, formats)
// plus unknown fields, which those schemas let through but the API server
// rejects (kubectl apply's strict field validation): every key is looked up
// in the models' TypeScript declarations, which list each type's fields.
import { createRequire } from 'node:module';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const modelsRoot = path.dirname(require.resolve('kubernetes-models/package.json'));
const nodeModules = path.dirname(modelsRoot);

// apiVersion + kind -> the model's module, e.g. apps/v1/Deployment, v1/Service.
function modelPath(apiVersion, kind) {
    if (typeof apiVersion !== 'string' || typeof kind !== 'string') return null;
    const p = `${apiVersion}/${kind}`;
    return existsSync(path.join(modelsRoot, `${p}.d.ts`)) ? p : null;
}

const shapes = new Map();
// The fields of the interface a .d.ts file declares: name -> {file, array}
// (file: the declaration of the field's type when that is an object type),
// or null when the file declares no interface (Quantity, IntOrString...).
function shape(file) {
    if (shapes.has(file)) return shapes.get(file);
    const text = readFileSync(file, 'utf8');
    const imports = new Map();
    for (const m of text.matchAll(/import \{ ([\w, ]+) \} from "([^"]+)";/g)) {
        for (const name of m[1].split(',').map((s) => s.trim())) {
            let target;
            if (m[2].startsWith('.')) target = path.resolve(path.dirname(file), `${m[2]}.d.ts`);
            else target = path.join(nodeModules, `${m[2]}.d.ts`);
            imports.set(name, target);
        }
    }
    const start = text.search(/^export interface I\w+( extends [\w, ]+)? \{$/m);
    if (start < 0) {
        shapes.set(file, null);
        return null;
    }
    const body = text.slice(start, text.indexOf('\n}', start));
    const fields = new Map();
    for (const m of body.matchAll(/^ {4}"([^"]+)"\??: (.+?);?$/gm)) {
        const type = m[2];
        const array = /^Array<(\w+)>$/.exec(type);
        const ref = array ? array[1] : /^\w+$/.test(type) ? type : null;
        const target = ref && imports.get(ref);
        fields.set(m[1], { file: target || null, array: Boolean(array) });
    }
    const s = { fields };
    shapes.set(file, s);
    return s;
}

function unknownFields(value, file, where, out) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return;
    const s = shape(file);
    if (!s) return;
    for (const [key, v] of Object.entries(value)) {
        const f = s.fields.get(key);
        if (!f) {
            out.push(`${where}/${key}: unknown field`);
            continue;
        }
        if (!f.file || v === null) continue;
        if (f.array) {
            if (Array.isArray(v)) v.forEach((e, i) => unknownFields(e, f.file, `${where}/${key}/${i}`, out));
        } else {
            unknownFields(v, f.file, `${where}/${key}`, out);
        }
    }
}

// Problems of one document, as "kind/name: path: message" strings.
export async function schemaProblems(doc) {
    const id = `${doc?.kind}/${doc?.metadata?.name}`;
    const p = modelPath(doc?.apiVersion, doc?.kind);
    if (!p) return [`${id}: no schema for apiVersion ${doc?.apiVersion} kind ${doc?.kind}`];
    const mod = await import(`kubernetes-models/${p}`);
    const Model = mod[doc.kind] || mod.default;
    const problems = [];
    // kustomize folds long base64 values over lines; the API server (Go's
    // base64) ignores the newlines, the schema's "byte" pattern does not.
    if (doc.kind === 'Secret' || doc.kind === 'ConfigMap') {
        doc = structuredClone(doc);
        for (const field of ['data', 'binaryData']) {
            if (doc.kind === 'ConfigMap' && field === 'data') continue;
            for (const [k, v] of Object.entries(doc[field] || {})) {
                if (typeof v === 'string') doc[field][k] = v.replace(/\n/g, '');
            }
        }
    }
    try {
        new Model(doc).validate();
    } catch (e) {
        const details = (e.errors || []).map((x) => `${x.instancePath || '/'} ${x.message}`);
        problems.push(...(details.length ? details : [String(e.message || e)]).map((d) => `${id}: ${d}`));
    }
    const unknown = [];
    unknownFields(doc, path.join(modelsRoot, `${p}.d.ts`), '', unknown);
    problems.push(...unknown.map((u) => `${id}: ${u}`));
    return problems;
}
