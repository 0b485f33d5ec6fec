"""common.py - small helpers the e2e tests share."""
import os

from harness import BIN_DIR


def fresh(fn=None, services=None, **env):
    """Marks a test as needing its own stack, optionally with extra env and
    only the given services (default: all of harness.SERVICES)."""
    def mark(f):
        f.fresh = True
        f.env = {k: str(v) for k, v in env.items()} or None
        f.services = services
        return f
    return mark(fn) if fn else mark


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def statement(service, start, fragment):
    """A statement exactly as 'service' prepares it: the one string of its
    binary that holds 'fragment', from 'start' on."""
    with open(os.path.join(BIN_DIR, service), "rb") as f:
        found = [s[s.find(start.encode()):].decode() for s in f.read().split(b"\0")
                 if start.encode() in s and fragment.encode() in s]
    check(len(found) == 1, "one statement with %r: %r" % (fragment, found))
    return found[0]


def expect(resp, status, body=None):
    check(resp.status == status, "expected %d, got %r" % (status, resp))
    if body is not None:
        check(resp.body == body, "expected body %r, got %r" % (body, resp.body))
    return resp


def new_item(stack, **over):
    item = {"name": "user-1", "guide": "python", "description": "d", "status": "s"}
    item.update(over)
    r = expect(stack.request("POST", "/api/items", item), 200)
    return int(r.body)
