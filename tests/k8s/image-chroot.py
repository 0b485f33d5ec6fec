#!/usr/bin/env python3
"""image-chroot.py - builds the Dockerfile without a Docker engine and runs
the result the way the pods do. Not part of ./dev test: it downloads Debian
packages (~300 MB) and takes minutes. As root:

    python3 tests/k8s/image-chroot.py [WORKDIR]      (default /var/tmp/elwing-image)

debian:bookworm-slim is stood in for by `debootstrap --variant=minbase
bookworm` (cached in WORKDIR/base); each stage of the Dockerfile is a copy of
it, and its instructions (FROM, WORKDIR, COPY [--from], RUN, USER, ENV,
ENTRYPOINT, CMD, EXPOSE) run in a chroot with the build context filtered by
.dockerignore. Then, on the runtime stage mounted read-only with a tmpfs on
/tmp, as the image's USER:
  - the default command (usage) and `PROGRAM --config` of every program;
  - `migrate` against a throwaway PostgreSQL 15 on a loopback port;
  - the gateway and the tracker, configured like the pods (0.0.0.0, health
    port, SHUTDOWN_TIMEOUT_MS), against a throwaway nats-server: /livez,
    /readyz, a POST and a GET through the gateway, then SIGTERM: both exit 0.
Prints ok/FAIL lines and "N passed, N failed".
"""
import fnmatch
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
WORK = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else '/var/tmp/elwing-image')
MIRROR = 'http://deb.debian.org/debian'
PGBIN = '/usr/lib/postgresql/15/bin'
results = [0, 0]
mounts = []


def report(name, ok, why=''):
    results[0 if ok else 1] += 1
    print(f'ok {name}' if ok else f'FAIL {name}: {why}', flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=isinstance(cmd, str), check=True, **kw)


def parse_dockerfile(text):
    text = text.replace('\\\n', ' ')
    out = []
    for line in text.split('\n'):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        op, _, args = line.partition(' ')
        out.append((op.upper(), args.strip()))
    return out


def ignore_patterns():
    with open(os.path.join(ROOT, '.dockerignore')) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith('#')]


def ignored(rel, patterns):
    for p in patterns:
        variants = [p] + ([p[3:]] if p.startswith('**/') else [])
        for v in variants:
            if fnmatch.fnmatch(rel, v) or fnmatch.fnmatch(rel, v + '/*') or \
               (p.startswith('**/') and fnmatch.fnmatch(rel, '*/' + v)) or \
               (p.startswith('**/') and fnmatch.fnmatch(rel, '*/' + v + '/*')):
                return True
    return False


def copy_context(src_rel, dest):
    patterns = ignore_patterns()
    src = os.path.normpath(os.path.join(ROOT, src_rel))
    if os.path.isfile(src):
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(src, dest)
        return
    for dirpath, dirnames, filenames in os.walk(src):
        rel_dir = os.path.relpath(dirpath, ROOT)
        dirnames[:] = [d for d in dirnames if not ignored(os.path.normpath(os.path.join(rel_dir, d)), patterns)]
        target = os.path.join(dest, os.path.relpath(dirpath, src))
        os.makedirs(target, exist_ok=True)
        for f in filenames:
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if not ignored(rel, patterns):
                shutil.copy2(os.path.join(dirpath, f), os.path.join(target, f), follow_symlinks=False)


def copy_tree(src, dest):
    if os.path.isdir(src):
        os.makedirs(dest, exist_ok=True)
        sh(['cp', '-a', src.rstrip('/') + '/.', dest])
    else:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        sh(['cp', '-a', src, dest])


def mount(*args):
    sh(['mount', *args])
    mounts.append(args[-1])


def umount_all():
    for m in reversed(mounts):
        subprocess.run(['umount', '-l', m], check=False)
    mounts.clear()


def base_rootfs():
    base = os.path.join(WORK, 'base')
    if not os.path.exists(os.path.join(base, 'etc/os-release')):
        shutil.rmtree(base, ignore_errors=True)
        sh(['debootstrap', '--variant=minbase', 'bookworm', base, MIRROR], stdout=subprocess.DEVNULL)
        with open(os.path.join(base, 'etc/apt/sources.list'), 'w') as f:
            f.write(f'deb {MIRROR} bookworm main\ndeb {MIRROR} bookworm-updates main\n'
                    'deb http://deb.debian.org/debian-security bookworm-security main\n')
    return base


def build():
    instructions = parse_dockerfile(open(os.path.join(ROOT, 'Dockerfile')).read())
    stages = []   # {name, root, user, entrypoint, cmd, env}
    base = base_rootfs()
    for op, args in instructions:
        if op == 'FROM':
            parts = args.split()
            assert parts[0] == 'debian:bookworm-slim', parts[0]
            n = len(stages)
            root = os.path.join(WORK, f'stage{n}')
            umount_all()
            shutil.rmtree(root, ignore_errors=True)
            sh(['cp', '-a', base, root])
            shutil.copy('/etc/resolv.conf', os.path.join(root, 'etc/resolv.conf'))
            mount('-t', 'proc', 'proc', os.path.join(root, 'proc'))
            mount('--rbind', '/dev', os.path.join(root, 'dev'))
            stages.append({'name': parts[2] if len(parts) > 2 else str(n), 'root': root, 'cwd': '/',
                           'user': '0', 'entrypoint': None, 'cmd': None,
                           'env': {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                                   'DEBIAN_FRONTEND': 'noninteractive', 'HOME': '/root'}})
            continue
        st = stages[-1]
        if op == 'WORKDIR':
            st['cwd'] = args
            os.makedirs(st['root'] + args, exist_ok=True)
        elif op == 'ENV':
            k, _, v = args.partition('=')
            st['env'][k.strip()] = v.strip()
        elif op == 'RUN':
            print(f'--- [{st["name"]}] RUN {args[:100]}', flush=True)
            sh(['chroot', st['root'], '/bin/sh', '-c', f'cd {st["cwd"]} && {args}'], env=st['env'])
        elif op == 'COPY':
            parts = args.split()
            frm = next((p.split('=', 1)[1] for p in parts if p.startswith('--from=')), None)
            parts = [p for p in parts if not p.startswith('--')]
            *srcs, dest = parts
            if not dest.startswith('/'):
                dest = os.path.join(st['cwd'], dest)
            for src in srcs:
                target = st['root'] + dest
                if frm:
                    other = next(s for s in stages if s['name'] == frm)
                    copy_tree(other['root'] + src, target)
                else:
                    if dest.endswith('/') or src == '.':
                        copy_context(src, target)
                    else:
                        copy_context(src, target)
        elif op == 'USER':
            st['user'] = args
        elif op == 'ENTRYPOINT':
            st['entrypoint'] = json.loads(args)
        elif op == 'CMD':
            st['cmd'] = json.loads(args)
        elif op == 'EXPOSE':
            pass
        else:
            raise SystemExit(f'image-chroot: unsupported instruction {op}')
    umount_all()
    return stages[-1]


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, data=None, timeout=3):
    req = urllib.request.Request(url, data=data, headers={'content-type': 'application/json'} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def wait_for(url, status=200, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if get(url)[0] == status:
            return True
        time.sleep(0.2)
    return False


def main():
    os.makedirs(WORK, exist_ok=True)
    try:
        final = build()
    except (subprocess.CalledProcessError, AssertionError, StopIteration) as e:
        umount_all()
        report('the Dockerfile builds (every stage, in a chroot of Debian bookworm)', False, str(e))
        print(f'{results[0]} passed, {results[1]} failed')
        sys.exit(1)
    report('the Dockerfile builds (every stage, in a chroot of Debian bookworm)', True)
    # The runtime stage as the pods see it: read-only, a tmpfs on /tmp.
    ro = os.path.join(WORK, 'run')
    os.makedirs(ro, exist_ok=True)
    mount('--bind', final['root'], ro)
    sh(['mount', '-o', 'remount,ro,bind', ro])
    mount('-t', 'tmpfs', 'tmpfs', os.path.join(ro, 'tmp'))
    mount('-t', 'proc', 'proc', os.path.join(ro, 'proc'))
    mount('--rbind', '/dev', os.path.join(ro, 'dev'))
    uid, _, gid = final['user'].partition(':')
    report('the image runs as a numeric non-root user', uid.isdigit() and int(uid) > 0, final['user'])

    def image(args, env=None, **kw):
        cmd = ['chroot', f'--userspec={uid}:{gid or uid}', ro, *final['entrypoint'], *args]
        return subprocess.Popen(cmd, env={'PATH': final['env']['PATH'], 'HOME': '/nonexistent', **(env or {})}, **kw)

    def image_run(args, env=None, timeout=60):
        p = image(args, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err

    rc, out, err = image_run(final['cmd'] or [])
    report('the default command prints the usage and exits 0', rc == 0 and 'usage' in err, f'{rc} {err}')
    programs = sorted(os.listdir(os.path.join(ro, 'usr/local/libexec/elwing')))
    services = set(os.listdir(os.path.join(ROOT, 'services')))
    for prog in programs:
        if prog in services:
            rc, out, err = image_run([prog, '--config'])
            report(f'{prog} --config runs in the image (its libraries are there)', rc == 0 and '\t' in out, err.strip()[:300])
        else:
            r = subprocess.run(['chroot', ro, 'ldd', f'/usr/local/libexec/elwing/{prog}'], capture_output=True, text=True)
            report(f'tool {prog}: its libraries are in the image', r.returncode == 0 and 'not found' not in r.stdout, r.stdout + r.stderr)

    tmp = tempfile.mkdtemp(prefix='elwing-image-')
    os.chmod(tmp, 0o755)
    procs = []
    try:
        # A throwaway PostgreSQL for `migrate` and the services.
        pgport = free_port()
        pgdata = os.path.join(tmp, 'pg')
        os.makedirs(pgdata)
        shutil.chown(pgdata, 'postgres')
        as_pg = ['runuser', '-u', 'postgres', '--'] if os.getuid() == 0 else []
        sh([*as_pg, f'{PGBIN}/initdb', '-D', pgdata, '-A', 'trust', '-U', 'elwing'], stdout=subprocess.DEVNULL)
        sh([*as_pg, f'{PGBIN}/pg_ctl', '-D', pgdata, '-w', '-l', os.path.join(pgdata, 'log'), '-o',
            f'-p {pgport} -c listen_addresses=127.0.0.1 -c unix_socket_directories={pgdata}', 'start'], stdout=subprocess.DEVNULL)
        sh(['psql', '-X', '-q', '-h', '127.0.0.1', '-p', str(pgport), '-U', 'elwing', '-d', 'postgres', '-c', 'CREATE DATABASE app'])
        pg = {'PGHOST': '127.0.0.1', 'PGPORT': str(pgport), 'PGUSER': 'elwing', 'PGPASSWORD': 'unused', 'PGDATABASE': 'app'}
        rc, out, err = image_run(['migrate'], pg)
        rc2, out2, err2 = image_run(['migrate'], pg)
        report('migrate applies the migrations with the image\'s psql, and again is a no-op',
               rc == 0 and 'applied' in out and rc2 == 0 and 'applied' not in out2, f'{rc} {out} {err} / {rc2} {err2}')

        natsport = free_port()
        nats = subprocess.Popen(['nats-server', '-a', '127.0.0.1', '-p', str(natsport), '-js', '-sd', os.path.join(tmp, 'nats'),
                                 '-c', os.path.join(ROOT, 'deploy/local/nats.conf')], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(nats)
        time.sleep(0.5)
        gwport, hport = free_port(), free_port()
        common = {'NATS_URL': f'nats://127.0.0.1:{natsport}', 'LOG_LEVEL': 'info', 'SHUTDOWN_TIMEOUT_MS': '10000'}
        tracker = image(['tracker'], {**common, **pg, 'HEALTH_HOST': '0.0.0.0', 'HEALTH_PORT': str(hport), 'EVENTS_REPLICAS': '1'},
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        gateway = image(['gateway'], {**common, 'GATEWAY_HOST': '0.0.0.0', 'GATEWAY_PORT': str(gwport)},
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs += [tracker, gateway]
        report('tracker: /livez and /readyz on HEALTH_PORT', wait_for(f'http://127.0.0.1:{hport}/livez') and wait_for(f'http://127.0.0.1:{hport}/readyz'), 'not 200 in 15 s')
        report('gateway: /livez and /readyz', wait_for(f'http://127.0.0.1:{gwport}/livez') and wait_for(f'http://127.0.0.1:{gwport}/readyz'), 'not 200 in 15 s')
        st, body = get(f'http://127.0.0.1:{gwport}/api/items', json.dumps({'name': 'k8s', 'guide': 'image', 'description': 'chroot', 'status': 'new'}).encode())
        st2, body2 = get(f'http://127.0.0.1:{gwport}/api/items/{body.strip()}')
        report('a request through the gateway to the tracker and PostgreSQL', st in (200, 201) and st2 == 200 and '"k8s"' in body2, f'{st} {body} / {st2} {body2}')
        if 'events' in programs:
            rc, out, err = image_run(['events', '--url', f'nats://127.0.0.1:{natsport}', '--count', '1', '--idle-ms', '10000'], timeout=30)
            report('the events tool in the image shows the event of that request', rc == 0 and 'k8s' in out, f'{rc} {out[:200]} {err[:300]}')
        for name, p in (('tracker', tracker), ('gateway', gateway)):
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                rc = 'still running after 15 s'
            report(f'{name}: SIGTERM, exit 0', rc == 0, str(rc))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if os.path.exists(os.path.join(tmp, 'pg', 'postmaster.pid')):
            subprocess.run([*(['runuser', '-u', 'postgres', '--'] if os.getuid() == 0 else []), f'{PGBIN}/pg_ctl', '-D',
                            os.path.join(tmp, 'pg'), '-m', 'immediate', 'stop'], stdout=subprocess.DEVNULL, check=False)
        umount_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f'{results[0]} passed, {results[1]} failed')
    sys.exit(1 if results[1] else 0)


if __name__ == '__main__':
    try:
        main()
    finally:
        umount_all()
