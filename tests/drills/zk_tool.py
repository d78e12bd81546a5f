#!/usr/bin/env python3
"""ZooKeeper znode export / re-create / verify, for the ZooKeeper drill (tests/drill_zookeeper.rs).

A small ZooKeeper client (the jute wire protocol over TCP, python3 stdlib only) that talks to the
real ZooKeeper server the drill starts. In the drill it plays two roles:

* the backup: `export` writes every znode under the given roots, with its value, as JSON;
* Nuvla's `job_restore.py`: `restore --from EXPORT --zk-hosts HOST:PORT [--es-hosts …]` re-creates
  the znodes in a fresh ZooKeeper. It takes the same `--zk-hosts`/`--es-hosts` arguments as the
  real script, so runbooks/nuvla/zk-rebuild.yaml runs it through its `restore_command` param
  exactly as it runs the real side container. (`--es-hosts` is accepted and ignored: the export
  stands in for the jobs the real script reads from Elasticsearch.)

Other commands: `create PATH VALUE` (parents must exist), `verify --from EXPORT ROOT…` (the live
tree under ROOT equals the export: same znodes, same values; exit 1 with the differences
otherwise), `count ROOT…`.
"""

import argparse
import json
import socket
import struct
import sys

OP_CREATE = 1
OP_GET_DATA = 4
OP_GET_CHILDREN = 8
OP_CLOSE = -11
ERR_NONODE = -101
ERR_NODEEXISTS = -110
# OPEN_ACL_UNSAFE: all permissions for world:anyone.
OPEN_ACL = [(31, "world", "anyone")]


class ZkError(Exception):
    def __init__(self, code, path):
        super().__init__(f"ZooKeeper error {code} on {path}")
        self.code = code
        self.path = path


class Writer:
    def __init__(self):
        self.buf = bytearray()

    def int(self, v):
        self.buf += struct.pack(">i", v)
        return self

    def long(self, v):
        self.buf += struct.pack(">q", v)
        return self

    def bool(self, v):
        self.buf += b"\x01" if v else b"\x00"
        return self

    def buffer(self, b):
        if b is None:
            return self.int(-1)
        self.int(len(b))
        self.buf += b
        return self

    def string(self, s):
        return self.buffer(s.encode("utf-8"))


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def long(self):
        return struct.unpack(">q", self.take(8))[0]

    def buffer(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def string(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8")


class Client:
    """One session on one server of `hosts` (the first that answers)."""

    def __init__(self, hosts, timeout=10.0):
        last = None
        for hostport in hosts:
            host, _, port = hostport.rpartition(":")
            try:
                self.sock = socket.create_connection((host, int(port)), timeout=timeout)
                break
            except OSError as e:
                last = e
        else:
            raise SystemExit(f"zk_tool: cannot connect to ZooKeeper at {', '.join(hosts)}: {last}")
        self.xid = 0
        connect = Writer().int(0).long(0).int(int(timeout * 1000)).long(0).buffer(b"\x00" * 16).bool(False)
        self._send(connect.buf)
        r = Reader(self._recv())
        r.int()  # protocol version
        if r.int() <= 0:  # negotiated session timeout: 0 means the session was refused
            raise SystemExit("zk_tool: ZooKeeper refused the session")

    def _send(self, payload):
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _recv(self):
        n = struct.unpack(">i", self._exact(4))[0]
        return self._exact(n)

    def _exact(self, n):
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise SystemExit("zk_tool: ZooKeeper closed the connection")
            out += chunk
        return bytes(out)

    def _call(self, op, body, path):
        self.xid += 1
        w = Writer().int(self.xid).int(op)
        w.buf += body
        self._send(w.buf)
        while True:
            r = Reader(self._recv())
            xid = r.int()
            r.long()  # zxid
            err = r.int()
            if xid == self.xid:
                break  # anything else is a notification or ping reply: not ours
        if err != 0:
            raise ZkError(err, path)
        return r

    def create(self, path, value):
        w = Writer().string(path).buffer(value.encode("utf-8")).int(len(OPEN_ACL))
        for perms, scheme, ident in OPEN_ACL:
            w.int(perms).string(scheme).string(ident)
        w.int(0)  # persistent
        self._call(OP_CREATE, w.buf, path)

    def get(self, path):
        r = self._call(OP_GET_DATA, Writer().string(path).bool(False).buf, path)
        data = r.buffer()
        return "" if data is None else data.decode("utf-8")

    def children(self, path):
        r = self._call(OP_GET_CHILDREN, Writer().string(path).bool(False).buf, path)
        return [r.string() for _ in range(r.int())]

    def tree(self, root):
        """Every znode at or below `root`, path → value (a missing root gives nothing)."""
        out = {}
        stack = [root]
        while stack:
            path = stack.pop()
            try:
                out[path] = self.get(path)
                kids = self.children(path)
            except ZkError as e:
                if e.code == ERR_NONODE:
                    continue
                raise
            base = "" if path == "/" else path
            stack.extend(f"{base}/{k}" for k in kids)
        return out

    def close(self):
        try:
            self._call(OP_CLOSE, b"", "(close)")
        except (ZkError, SystemExit, OSError):
            pass
        self.sock.close()


def hosts_arg(p):
    p.add_argument(
        "--zk-hosts", dest="zk_hosts", nargs="+", default=["127.0.0.1:2181"], metavar="HOST",
        help="ZooKeeper hosts as host:port (as job_restore.py takes them)",
    )


def main():
    parser = argparse.ArgumentParser(description="ZooKeeper znode export / re-create / verify (drill tool)")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("create", help="create one znode (its parent must exist)")
    p.add_argument("path")
    p.add_argument("value")
    hosts_arg(p)

    p = sub.add_parser("export", help="print every znode under ROOT… with its value, as JSON")
    p.add_argument("roots", nargs="+", metavar="ROOT")
    hosts_arg(p)

    p = sub.add_parser("restore", help="re-create the znodes of an export (stands in for job_restore.py)")
    p.add_argument("--from", dest="source", required=True, help="export file written by `export`")
    p.add_argument(
        "--es-hosts", dest="es_hosts", nargs="+", default=["es"], metavar="HOST",
        help="accepted for compatibility with job_restore.py; the export replaces the Elasticsearch query",
    )
    hosts_arg(p)

    p = sub.add_parser("verify", help="the tree under ROOT… equals the export")
    p.add_argument("--from", dest="source", required=True)
    p.add_argument("roots", nargs="+", metavar="ROOT")
    hosts_arg(p)

    p = sub.add_parser("count", help="number of znodes at or below ROOT…")
    p.add_argument("roots", nargs="+", metavar="ROOT")
    hosts_arg(p)

    args = parser.parse_args()
    zk = Client(args.zk_hosts)
    try:
        if args.cmd == "create":
            zk.create(args.path, args.value)
            print(f"Created {args.path}")
        elif args.cmd == "export":
            tree = {}
            for root in args.roots:
                tree.update(zk.tree(root))
            json.dump(dict(sorted(tree.items())), sys.stdout, indent=1)
            print()
        elif args.cmd == "restore":
            with open(args.source, encoding="utf-8") as f:
                wanted = json.load(f)
            created = existing = 0
            # Sorted paths put every parent before its children.
            for path in sorted(wanted, key=lambda p: (p.count("/"), p)):
                try:
                    zk.create(path, wanted[path])
                    created += 1
                except ZkError as e:
                    if e.code != ERR_NODEEXISTS:
                        raise
                    if zk.get(path) != wanted[path]:
                        raise SystemExit(f"zk_tool: {path} exists with a different value")
                    existing += 1
            print(f"Re-created {created} znodes ({existing} already present) on {','.join(args.zk_hosts)}")
        elif args.cmd == "verify":
            with open(args.source, encoding="utf-8") as f:
                wanted = json.load(f)
            live = {}
            for root in args.roots:
                live.update(zk.tree(root))
            problems = []
            for path in sorted(set(wanted) | set(live)):
                if path not in live:
                    problems.append(f"missing: {path}")
                elif path not in wanted:
                    problems.append(f"unexpected: {path}")
                elif live[path] != wanted[path]:
                    problems.append(f"value differs: {path}: {live[path]!r} != {wanted[path]!r}")
            if problems:
                print("\n".join(problems), file=sys.stderr)
                raise SystemExit(1)
            print(f"{len(live)} znodes and values match the export")
        elif args.cmd == "count":
            print(sum(len(zk.tree(root)) for root in args.roots))
    except ZkError as e:
        raise SystemExit(f"zk_tool: {e}")
    finally:
        zk.close()


if __name__ == "__main__":
    main()
