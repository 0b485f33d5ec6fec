// Policy check of a rendered overlay: what the manifests must guarantee for
// every workload, beyond what the API schema says. Each rule has a name; a
// problem is {rule, where, msg}. tests/k8s/check.mjs runs it on every overlay
// and proves every rule can fail on a deliberately broken copy (mutations.mjs).

// The profile of an overlay: how many replicas, whether autoscaled.
//   dev:  one replica of everything, no autoscaler, a single NATS node
//   prod: 2+ replicas of every Deployment (HPA for the stateless ones), 3 NATS nodes
export const PROFILES = { dev: 'dev', prod: 'prod', 'external-postgres': 'prod' };

// Deployments of our image that are not autoscaled: their pace is not their
// CPU's (the notifier's is the SMTP relay's).
export const NOT_AUTOSCALED = new Set(['notifier']);

// What each program of our image talks to over the network.
const NEEDS = {
    gateway: ['nats'],
    migrate: ['db'],
    notifier: ['nats', 'db', 'smtp'],
    service: ['nats', 'db'], // every other service
};
const PORTS = { nats: 4222, db: 5432, dns: 53, smtp: [25, 465, 587], routes: 6222 };
const SECRET_NAME = /PASSWORD|SECRET|TOKEN|^NATS_URL$/;
const PSS_VOLUMES = new Set(['configMap', 'secret', 'emptyDir', 'persistentVolumeClaim',
    'projected', 'downwardAPI', 'ephemeral', 'csi']);
const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'Job', 'DaemonSet', 'CronJob']);

export const RULES = [
    'probes', 'probes-differ', 'probes-endpoints', 'resources', 'non-root', 'read-only-root',
    'no-privilege-escalation', 'capabilities', 'seccomp', 'no-service-account-token',
    'host-namespaces-and-volumes', 'image-tag', 'env-refs', 'secrets-from-secret',
    'service-links', 'graceful-shutdown', 'replicas', 'hpa', 'pdb', 'selectors',
    'network-default-deny', 'network-ingress', 'network-egress', 'pss-namespace',
    'events-stream',
];

const id = (d) => `${d.kind}/${d.metadata?.name}`;

function podSpecOf(w) {
    return w.kind === 'CronJob' ? w.spec?.jobTemplate?.spec?.template?.spec : w.spec?.template?.spec;
}
function podLabelsOf(w) {
    return (w.kind === 'CronJob' ? w.spec?.jobTemplate?.spec?.template : w.spec?.template)?.metadata?.labels || {};
}
function containersOf(spec) {
    return [...(spec?.initContainers || []), ...(spec?.containers || [])];
}
function matches(selector, labels) {
    if (!selector) return false;
    const ml = selector.matchLabels || {};
    if (!Object.entries(ml).every(([k, v]) => labels[k] === v)) return false;
    for (const e of selector.matchExpressions || []) {
        const has = Object.hasOwn(labels, e.key);
        if (e.operator === 'In' && !(has && e.values.includes(labels[e.key]))) return false;
        if (e.operator === 'NotIn' && has && e.values.includes(labels[e.key])) return false;
        if (e.operator === 'Exists' && !has) return false;
        if (e.operator === 'DoesNotExist' && has) return false;
    }
    return true;
}
function isEmptySelector(s) {
    return s && Object.keys(s.matchLabels || {}).length === 0 && (s.matchExpressions || []).length === 0;
}

// "100m" -> 0.1, "64Mi" -> 67108864
export function quantity(q) {
    const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(String(q));
    if (!m) return NaN;
    const mult = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 }[m[2]];
    return mult === undefined ? NaN : Number(m[1]) * mult;
}

// Is this container running our image (the Dockerfile's), and which program?
export function ourProgram(c, images) {
    const repo = String(c.image || '').replace(/[@:][^/]*$/, '');
    if (!images.has(repo.split('/').pop())) return null;
    return c.args?.[0] || null;
}

// The environment a container gets: name -> {value} | {from: 'secret'|'configmap', name, key}.
export function containerEnv(c, docs) {
    const env = new Map();
    for (const src of c.envFrom || []) {
        const prefix = src.prefix || '';
        if (src.configMapRef) {
            const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === src.configMapRef.name);
            for (const [k, v] of Object.entries(cm?.data || {})) env.set(prefix + k, { value: v, from: 'configmap', name: cm.metadata.name, key: k });
        }
        if (src.secretRef) {
            const s = docs.find((d) => d.kind === 'Secret' && d.metadata.name === src.secretRef.name);
            for (const k of Object.keys({ ...(s?.data || {}), ...(s?.stringData || {}) })) env.set(prefix + k, { from: 'secret', name: s.metadata.name, key: k });
        }
    }
    for (const e of c.env || []) {
        const vf = e.valueFrom;
        if (vf?.secretKeyRef) env.set(e.name, { from: 'secret', name: vf.secretKeyRef.name, key: vf.secretKeyRef.key });
        else if (vf?.configMapKeyRef) {
            const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === vf.configMapKeyRef.name);
            env.set(e.name, { value: cm?.data?.[vf.configMapKeyRef.key], from: 'configmap', name: vf.configMapKeyRef.name, key: vf.configMapKeyRef.key });
        } else if (vf) env.set(e.name, { from: 'field' });
        else env.set(e.name, { value: e.value ?? '' });
    }
    return env;
}

function probeTarget(probe) {
    if (!probe) return null;
    if (probe.httpGet) return { kind: 'http', port: probe.httpGet.port, path: probe.httpGet.path };
    if (probe.tcpSocket) return { kind: 'tcp', port: probe.tcpSocket.port };
    if (probe.grpc) return { kind: 'grpc', port: probe.grpc.port };
    if (probe.exec) return { kind: 'exec' };
    return null;
}
function resolvePort(c, port) {
    const p = (c.ports || []).find((x) => x.name === port || x.containerPort === port);
    return p ? p.containerPort : null;
}
function natsConf(docs, w) {
    const vol = (podSpecOf(w)?.volumes || []).find((v) => v.configMap);
    const cm = vol && docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === vol.configMap.name);
    return cm ? Object.values(cm.data || {}).join('\n') : '';
}
function durationS(text, key) {
    const m = new RegExp(`^\\s*${key}\\s*[:=]?\\s*"?(\\d+)(ms|s|m)?"?`, 'm').exec(text);
    if (!m) return null;
    return Number(m[1]) * ({ ms: 1e-3, s: 1, m: 60 }[m[2] || 's']);
}

export function checkPolicy(docs, { profile, images = new Set(['elwing']) }) {
    const problems = [];
    const bad = (rule, where, msg) => problems.push({ rule, where, msg });
    const workloads = docs.filter((d) => WORKLOADS.has(d.kind));
    const hpas = docs.filter((d) => d.kind === 'HorizontalPodAutoscaler');
    const pdbs = docs.filter((d) => d.kind === 'PodDisruptionBudget');
    const policies = docs.filter((d) => d.kind === 'NetworkPolicy');
    const services = docs.filter((d) => d.kind === 'Service');
    const natsSet = workloads.find((w) => w.kind === 'StatefulSet' && w.metadata.name === 'nats');
    const hasPostgres = workloads.some((w) => w.metadata.name === 'postgres');

    for (const w of workloads) {
        const where = id(w);
        const spec = podSpecOf(w) || {};
        const longRunning = w.kind === 'Deployment' || w.kind === 'StatefulSet' || w.kind === 'DaemonSet';
        const psc = spec.securityContext || {};
        const labels = podLabelsOf(w);

        if (spec.automountServiceAccountToken !== false) bad('no-service-account-token', where, 'automountServiceAccountToken is not false');
        if (spec.hostNetwork || spec.hostPID || spec.hostIPC) bad('host-namespaces-and-volumes', where, 'uses a host namespace');
        for (const v of spec.volumes || []) {
            const type = Object.keys(v).find((k) => k !== 'name');
            if (!PSS_VOLUMES.has(type)) bad('host-namespaces-and-volumes', where, `volume ${v.name} is ${type}`);
        }

        let programs = [];
        for (const c of containersOf(spec)) {
            const cw = `${where} container ${c.name}`;
            const csc = c.securityContext || {};
            const program = ourProgram(c, images);
            if (program) programs.push(program);
            const env = containerEnv(c, docs);

            // probes
            const isInit = (spec.initContainers || []).includes(c);
            if (longRunning && !isInit) {
                for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
                    if (!c[p]) bad('probes', cw, `no ${p}`);
                }
                if (c.readinessProbe && c.livenessProbe &&
                    JSON.stringify(c.readinessProbe) === JSON.stringify(c.livenessProbe)) {
                    bad('probes-differ', cw, 'liveness and readiness probes are identical');
                }
                for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
                    const t = probeTarget(c[p]);
                    if (!c[p]) continue;
                    if (!t) { bad('probes-endpoints', cw, `${p} has no handler`); continue; }
                    if (t.kind === 'exec') continue;
                    const port = resolvePort(c, t.port);
                    if (port === null) { bad('probes-endpoints', cw, `${p} port ${t.port} is not a container port`); continue; }
                    if (program) {
                        // The process's own health endpoints, on the port it listens on.
                        const want = p === 'readinessProbe' ? '/readyz' : '/livez';
                        if (t.kind !== 'http' || t.path !== want) bad('probes-endpoints', cw, `${p} must be GET ${want}`);
                        const portVar = program === 'gateway' ? 'GATEWAY_PORT' : 'HEALTH_PORT';
                        const hostVar = program === 'gateway' ? 'GATEWAY_HOST' : 'HEALTH_HOST';
                        const listen = env.get(portVar)?.value;
                        if (String(port) !== String(listen)) bad('probes-endpoints', cw, `${p} probes port ${port} but ${portVar} is ${listen ?? 'unset'}`);
                        const host = env.get(hostVar)?.value;
                        if (host !== '0.0.0.0') bad('probes-endpoints', cw, `${hostVar} is ${host ?? 'unset'}: the kubelet cannot reach it (0.0.0.0)`);
                    }
                }
            }

            // resources
            const r = c.resources || {};
            for (const kind of ['requests', 'limits']) {
                for (const res of ['cpu', 'memory']) {
                    if (r[kind]?.[res] === undefined) bad('resources', cw, `no ${kind}.${res}`);
                    else if (Number.isNaN(quantity(r[kind][res]))) bad('resources', cw, `${kind}.${res} ${r[kind][res]} is not a quantity`);
                }
            }
            for (const res of ['cpu', 'memory']) {
                if (r.requests?.[res] !== undefined && r.limits?.[res] !== undefined &&
                    quantity(r.requests[res]) > quantity(r.limits[res])) bad('resources', cw, `requests.${res} above limits.${res}`);
            }

            // security context
            const nonRoot = csc.runAsNonRoot ?? psc.runAsNonRoot;
            const uid = csc.runAsUser ?? psc.runAsUser;
            if (nonRoot !== true) bad('non-root', cw, 'runAsNonRoot is not true');
            if (uid === undefined || uid === 0) bad('non-root', cw, `runAsUser is ${uid ?? 'unset'}`);
            if (csc.readOnlyRootFilesystem !== true) bad('read-only-root', cw, 'readOnlyRootFilesystem is not true');
            if (csc.allowPrivilegeEscalation !== false) bad('no-privilege-escalation', cw, 'allowPrivilegeEscalation is not false');
            if (csc.privileged) bad('no-privilege-escalation', cw, 'privileged');
            if (!(csc.capabilities?.drop || []).includes('ALL')) bad('capabilities', cw, 'capabilities do not drop ALL');
            if ((csc.capabilities?.add || []).length) bad('capabilities', cw, `adds capabilities ${csc.capabilities.add}`);
            const seccomp = (csc.seccompProfile ?? psc.seccompProfile)?.type;
            if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') bad('seccomp', cw, `seccompProfile is ${seccomp ?? 'unset'}`);

            // image
            const image = String(c.image || '');
            const tag = /@sha256:[0-9a-f]{64}$/.test(image) ? 'digest' : (/:([\w][\w.-]*)$/.exec(image.split('/').pop()) || [])[1];
            if (!tag) bad('image-tag', cw, `image ${image} has no tag`);
            else if (tag === 'latest') bad('image-tag', cw, `image ${image} is latest`);
            if (!c.imagePullPolicy) bad('image-tag', cw, 'no imagePullPolicy');

            // environment references
            for (const src of c.envFrom || []) {
                const ref = src.configMapRef || src.secretRef;
                const kind = src.configMapRef ? 'ConfigMap' : 'Secret';
                if (ref && !ref.optional && !docs.some((d) => d.kind === kind && d.metadata.name === ref.name)) {
                    bad('env-refs', cw, `envFrom ${kind} ${ref.name} is not in the manifests`);
                }
            }
            for (const e of c.env || []) {
                const ref = e.valueFrom?.secretKeyRef || e.valueFrom?.configMapKeyRef;
                if (!ref || ref.optional) continue;
                const kind = e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap';
                const obj = docs.find((d) => d.kind === kind && d.metadata.name === ref.name);
                if (!obj) bad('env-refs', cw, `${e.name}: ${kind} ${ref.name} is not in the manifests`);
                else if (!Object.hasOwn({ ...(obj.data || {}), ...(obj.stringData || {}) }, ref.key)) bad('env-refs', cw, `${e.name}: ${kind} ${ref.name} has no key ${ref.key}`);
            }
            for (const [name, v] of env) {
                if (SECRET_NAME.test(name) && v.from !== 'secret') bad('secrets-from-secret', cw, `${name} is not taken from a Secret`);
            }
            for (const v of (spec.volumes || [])) {
                if (v.configMap && !v.configMap.optional && !docs.some((d) => d.kind === 'ConfigMap' && d.metadata.name === v.configMap.name)) {
                    bad('env-refs', where, `volume ${v.name}: ConfigMap ${v.configMap.name} is not in the manifests`);
                }
            }

            // graceful shutdown
            if (longRunning && !isInit && program) {
                const cmd = c.lifecycle?.preStop?.exec?.command || [];
                const sleep = cmd[0] === 'sleep' ? Number(cmd[1]) : c.lifecycle?.preStop?.sleep?.seconds;
                const drainMs = Number(env.get('SHUTDOWN_TIMEOUT_MS')?.value);
                const grace = spec.terminationGracePeriodSeconds ?? 30;
                if (!(sleep >= 1)) bad('graceful-shutdown', cw, 'no preStop pause (sleep) before SIGTERM');
                else if (!(drainMs >= 0)) bad('graceful-shutdown', cw, 'SHUTDOWN_TIMEOUT_MS unset');
                else if (grace < sleep + Math.ceil(drainMs / 1000) + 5) {
                    bad('graceful-shutdown', cw, `terminationGracePeriodSeconds ${grace} < preStop ${sleep} s + drain ${drainMs / 1000} s + 5 s`);
                }
            }
            if (longRunning && !isInit && w === natsSet) {
                const conf = natsConf(docs, w);
                const ld = (durationS(conf, 'lame_duck_duration') ?? 120) + (durationS(conf, 'lame_duck_grace_period') ?? 10);
                const grace = spec.terminationGracePeriodSeconds ?? 30;
                if (!c.lifecycle?.preStop) bad('graceful-shutdown', cw, 'no preStop (lame duck mode)');
                if (grace <= ld) bad('graceful-shutdown', cw, `terminationGracePeriodSeconds ${grace} <= lame duck ${ld} s`);
            }
        }

        if (programs.length && spec.enableServiceLinks !== false) {
            bad('service-links', where, 'enableServiceLinks is not false (Service variables such as GATEWAY_PORT would reach the program)');
        }

        // replicas, autoscaling, disruption budgets
        if (longRunning) {
            const hpa = hpas.find((h) => h.spec?.scaleTargetRef?.kind === w.kind && h.spec.scaleTargetRef.name === w.metadata.name);
            const replicas = w.spec.replicas;
            const effective = hpa ? Math.max(hpa.spec.minReplicas ?? 1, replicas ?? 1) : replicas ?? 1;
            const isNats = w === natsSet;
            if (profile === 'dev') {
                if (effective !== 1) bad('replicas', where, `dev runs ${effective} replicas, not 1`);
                if (hpa) bad('hpa', where, `dev autoscales (${id(hpa)})`);
            } else if (isNats) {
                if (replicas !== 3) bad('replicas', where, `NATS runs ${replicas} nodes, not 3`);
            } else if (w.kind === 'Deployment' && effective < 2) {
                bad('replicas', where, `runs ${effective} replica(s), not 2 or more`);
            }
            if (profile !== 'dev' && w.kind === 'Deployment' && programs.length) {
                const stateless = !programs.some((p) => NOT_AUTOSCALED.has(p));
                if (stateless && !hpa) bad('hpa', where, 'no HorizontalPodAutoscaler');
                if (!stateless && hpa) bad('hpa', where, `is autoscaled though ${[...NOT_AUTOSCALED]} is not`);
            }
            if (hpa) {
                if (replicas !== undefined) bad('hpa', where, `sets replicas (${replicas}) though ${id(hpa)} owns it: every apply would scale it back`);
                if ((hpa.spec.minReplicas ?? 1) > hpa.spec.maxReplicas) bad('hpa', id(hpa), 'minReplicas above maxReplicas');
                for (const c of podSpecOf(w).containers || []) {
                    if (!c.resources?.requests?.cpu) bad('hpa', where, `container ${c.name} has no CPU request to scale on`);
                }
            }
            if (effective > 1 || hpa) {
                const pdb = pdbs.find((p) => matches(p.spec?.selector, labels));
                if (!pdb) bad('pdb', where, 'no PodDisruptionBudget');
                else {
                    const mu = pdb.spec.maxUnavailable;
                    const ma = pdb.spec.minAvailable;
                    if (mu !== undefined ? (mu === 0 || mu === '0%') : !(typeof ma === 'number' && ma < effective)) {
                        bad('pdb', id(pdb), 'allows no disruption: nodes could never be drained');
                    }
                }
            }
        }

        // selectors
        if (w.spec?.selector && !matches(w.spec.selector, labels)) bad('selectors', where, 'selector does not match the pod template labels');
    }

    for (const h of hpas) {
        const t = h.spec?.scaleTargetRef;
        if (!workloads.some((w) => w.kind === t?.kind && w.metadata.name === t?.name)) bad('hpa', id(h), `targets ${t?.kind}/${t?.name}, which is not in the manifests`);
    }
    for (const p of pdbs) {
        if (!workloads.some((w) => matches(p.spec?.selector, podLabelsOf(w)))) bad('pdb', id(p), 'selects no pods');
    }
    for (const s of services) {
        if (!s.spec?.selector) continue;
        const targets = workloads.filter((w) => matches({ matchLabels: s.spec.selector }, podLabelsOf(w)));
        if (!targets.length) { bad('selectors', id(s), 'selects no pods'); continue; }
        for (const port of s.spec.ports || []) {
            const tp = port.targetPort ?? port.port;
            const found = targets.some((w) => (podSpecOf(w).containers || []).some((c) => resolvePort(c, tp) !== null));
            if (!found) bad('selectors', id(s), `targetPort ${tp} is no container port of the pods it selects`);
        }
    }

    // network policies
    const denyAll = policies.some((p) => isEmptySelector(p.spec?.podSelector) &&
        ['Ingress', 'Egress'].every((t) => (p.spec.policyTypes || []).includes(t)) &&
        !(p.spec.ingress || []).length && !(p.spec.egress || []).length);
    if (!denyAll) bad('network-default-deny', 'NetworkPolicy', 'no default-deny policy (podSelector {}, Ingress and Egress, no rules)');

    const selecting = (labels, type) => policies.filter((p) => matches(p.spec?.podSelector || {}, labels) &&
        (p.spec.policyTypes || ['Ingress']).includes(type));
    const portsOf = (rule) => (rule.ports || []).map((p) => p.port);
    const podsMatching = (peer) => workloads.filter((w) => !peer.namespaceSelector && peer.podSelector && matches(peer.podSelector, podLabelsOf(w)));
    for (const w of workloads) {
        const labels = podLabelsOf(w);
        const where = id(w);
        const programs = containersOf(podSpecOf(w)).map((c) => ourProgram(c, images)).filter(Boolean);
        // ingress: only the gateway from outside the namespace
        for (const p of selecting(labels, 'Ingress')) {
            for (const rule of p.spec.ingress || []) {
                const peers = rule.from || [];
                const outside = !peers.length || peers.some((x) => x.ipBlock) ||
                    peers.some((x) => x.namespaceSelector);
                if (!outside) continue;
                if (programs.includes('gateway')) continue;
                const subscribersOnly = w === natsSet && peers.length &&
                    peers.every((x) => x.podSelector && !x.namespaceSelector ||
                        (x.namespaceSelector && JSON.stringify(x.namespaceSelector) === JSON.stringify({ matchLabels: { 'elwing.io/events-subscriber': 'true' } }) && !x.podSelector)) &&
                    portsOf(rule).every((port) => port === PORTS.nats || port === 'client');
                if (!subscribersOnly) bad('network-ingress', where, `${id(p)} lets traffic in from outside the namespace`);
            }
        }
        // egress: exactly what each program needs
        const kinds = programs.length ? (programs.map((pr) => NEEDS[pr] || NEEDS.service).flat()) :
            w === natsSet ? ['routes'] : [];
        const need = new Set(kinds);
        const allowed = new Set();
        for (const p of selecting(labels, 'Egress')) {
            for (const rule of p.spec.egress || []) {
                const ports = portsOf(rule);
                if (!ports.length) { bad('network-egress', where, `${id(p)} allows egress on every port`); continue; }
                for (const port of ports) {
                    const peers = rule.to || [];
                    if (port === PORTS.dns) { allowed.add('dns'); continue; }
                    let kind = null;
                    if (port === PORTS.nats && peers.length && peers.every((x) => podsMatching(x).some((t) => t === natsSet))) kind = 'nats';
                    else if (port === PORTS.routes && w === natsSet && peers.length && peers.every((x) => podsMatching(x).some((t) => t === natsSet))) kind = 'routes';
                    else if (port === PORTS.db && peers.length && peers.every((x) => x.ipBlock || podsMatching(x).some((t) => t.metadata.name === 'postgres'))) kind = 'db';
                    else if (PORTS.smtp.includes(port)) kind = 'smtp';
                    if (!kind || !need.has(kind)) bad('network-egress', where, `${id(p)} allows egress to port ${port}${kind ? ` (${kind})` : ''}, which it does not need`);
                    else allowed.add(kind);
                }
            }
        }
        for (const k of need) {
            if (k === 'db' && !hasPostgres && !allowed.has('db')) bad('network-egress', where, 'cannot reach the database (no egress on 5432)');
            else if (!allowed.has(k)) bad('network-egress', where, `cannot reach ${k} (no egress rule)`);
        }
        if (programs.length && !allowed.has('dns')) bad('network-egress', where, 'cannot resolve names (no egress on 53)');
        // ... and the far side lets it in
        const peerAllows = (target, port) => selecting(podLabelsOf(target), 'Ingress').some((p) => (p.spec.ingress || []).some((rule) =>
            (!rule.ports || portsOf(rule).includes(port) || portsOf(rule).some((x) => typeof x === 'string')) &&
            (!rule.from || rule.from.some((x) => x.podSelector && !x.namespaceSelector && matches(x.podSelector, labels)))));
        if (need.has('nats') && natsSet && !peerAllows(natsSet, PORTS.nats)) bad('network-ingress', where, 'NATS does not let it in on 4222');
        const pg = workloads.find((x) => x.metadata.name === 'postgres');
        if (need.has('db') && pg && !peerAllows(pg, PORTS.db)) bad('network-ingress', where, 'PostgreSQL does not let it in on 5432');
        if (w === natsSet && w.spec.replicas > 1 && !peerAllows(natsSet, PORTS.routes)) bad('network-ingress', where, 'the NATS nodes cannot reach each other on 6222');
    }

    // the namespace
    for (const ns of docs.filter((d) => d.kind === 'Namespace')) {
        if (ns.metadata.labels?.['pod-security.kubernetes.io/enforce'] !== 'restricted') bad('pss-namespace', id(ns), 'does not enforce the restricted Pod Security Standard');
    }
    if (!docs.some((d) => d.kind === 'Namespace')) bad('pss-namespace', 'Namespace', 'no Namespace');

    // events: the stream the services create is the one NATS lets subscribers read,
    // with as many copies as there are NATS nodes (3 at most)
    const svcCm = docs.filter((d) => d.kind === 'ConfigMap' && d.data?.EVENTS_STREAM !== undefined);
    if (natsSet) {
        const conf = natsConf(docs, natsSet);
        for (const cm of svcCm) {
            const stream = cm.data.EVENTS_STREAM;
            if (!conf.includes(`$JS.API.STREAM.INFO.${stream}"`)) bad('events-stream', id(cm), `EVENTS_STREAM ${stream} is not the stream nats.conf lets event subscribers read`);
            const replicas = Number(cm.data.EVENTS_REPLICAS);
            const want = Math.min(3, natsSet.spec.replicas ?? 1);
            if (replicas !== want) bad('events-stream', id(cm), `EVENTS_REPLICAS ${cm.data.EVENTS_REPLICAS}, with ${natsSet.spec.replicas} NATS node(s): want ${want}`);
        }
    }
    return problems;
}
