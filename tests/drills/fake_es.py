#!/usr/bin/env python3
"""FAKE Elasticsearch, for the drills only (tests/drill_elasticsearch.rs and the dry-run snapshots).

Elasticsearch cannot be installed here, so the Nuvla and ActiveData runbooks are drilled against
this small HTTP server (python3 stdlib) that speaks the parts of the documented API they use, with
realistic transitions driven by the number of polls:

  GET  /_cluster/health                 red while restored primaries initialize, yellow while a
                                        node is away or replicas are unassigned, green otherwise
  GET|PUT /_cluster/settings            persistent and transient settings (flat or nested keys)
  GET  /_cat/nodes?h=name|ip            the nodes that are up
  GET  /_cat/shards?h=node|ip           shards; with allocation enabled, every listing moves shards
                                        off excluded nodes (exclude.zone / exclude._ip): first
                                        RELOCATING ("src -> ip id dst"), then moved
  GET  /_cat/indices, /INDEX[,INDEX…]   the indices (404 when one is missing)
  PUT  /_snapshot/REPO                  register a repository (type s3 needs settings.bucket)
  PUT  /_snapshot/REPO/SNAP             start a snapshot: IN_PROGRESS for --snapshot-polls GETs
  GET  /_snapshot/REPO/SNAP | _all      snapshot info
  GET  /_cat/snapshots/REPO             the listing
  POST /_snapshot/REPO/SNAP/_restore    restore: refused over open indices; the indices then
                                        initialize for --restore-polls health polls
  POST /_fake/bounce/NAME-OR-IP         the drill's way to restart a node: away for 2 node
                                        listings, then back (--fail-node: never back, 500)

Every change is appended as a JSON line to --log, which the drills read.
"""

import argparse
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

LOCK = threading.Lock()


class Cluster:
    def __init__(self, args):
        self.args = args
        self.nodes = []
        for spec in args.nodes.split(","):
            name, ip, zone = spec.split(":")
            self.nodes.append({"name": name, "ip": ip, "zone": zone, "away": 0, "dead": False})
        self.settings = {"persistent": {}, "transient": {}}
        self.repos = {}
        self.snapshots = {}
        self.indices = {}
        for name in filter(None, args.indices.split(",")):
            self.indices[name] = {"docs": 100 + 7 * len(name), "restoring": 0}
        for spec in filter(None, args.snapshots.split(",")):
            repo, snap, state = spec.split(":")
            self.repos.setdefault(repo, {"type": "s3", "settings": {"bucket": "preexisting"}})
            self.snapshots.setdefault(repo, {})[snap] = self.new_snapshot(snap, state, 0)
            # Taken "before": a fixed time keeps listings reproducible (the dry-run snapshots).
            self.snapshots[repo][snap]["start_time_in_millis"] = 1714559400000
        # Shards: primaries and replicas spread over the nodes, two per node.
        self.shards = []
        names = [n["name"] for n in self.nodes]
        for i in range(2 * len(names)):
            self.shards.append({
                "index": f"activedata-{i // 4}", "shard": i % 4 // 2, "prirep": "p" if i % 2 == 0 else "r",
                "node": names[i % len(names)], "to": None,
            })
        self.health_polls = 0

    def log(self, **event):
        event["t"] = round(time.time(), 3)
        with open(self.args.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")

    def new_snapshot(self, name, state, polls):
        return {
            "snapshot": name, "uuid": f"uuid-{name}", "state": state, "polls": polls,
            "indices": sorted(self.indices) or ["nuvla-job", "nuvla-user"],
            "start_time_in_millis": int(time.time() * 1000),
        }

    def node(self, key):
        return next((n for n in self.nodes if key in (n["name"], n["ip"])), None)

    def up(self):
        return [n for n in self.nodes if not n["dead"] and n["away"] == 0]

    def setting(self, key):
        # Transient settings take precedence over persistent ones, as in Elasticsearch.
        for kind in ("transient", "persistent"):
            if key in self.settings[kind]:
                return self.settings[kind][key]
        return None

    def excluded(self, node):
        zone = self.setting("cluster.routing.allocation.exclude.zone") or ""
        ips = (self.setting("cluster.routing.allocation.exclude._ip") or "").split(",")
        return (zone and node["zone"] in zone.split(",")) or node["ip"] in ips

    def allocation_enabled(self):
        return (self.setting("cluster.routing.allocation.enable") or "all") != "none"

    def tick_allocation(self):
        """One step of shard movement: finish relocations, start at most one new one."""
        if not self.allocation_enabled():
            return
        for s in self.shards:
            if s["to"]:
                s["node"], s["to"] = s["to"], None
        started = 0
        for s in self.shards:
            here = self.node(s["node"])
            if started < 1 and here and self.excluded(here):
                targets = [n for n in self.up() if not self.excluded(n) and n["name"] != s["node"]]
                if targets:
                    targets.sort(key=lambda n: sum(1 for x in self.shards if x["node"] == n["name"]))
                    s["to"] = targets[0]["name"]
                    started += 1

    def health(self):
        initializing = 0
        for idx in self.indices.values():
            if idx["restoring"] > 0:
                initializing += 2
                idx["restoring"] -= 1
        away = [n for n in self.nodes if n["dead"] or n["away"] > 0]
        unassigned = sum(1 for s in self.shards if self.node(s["node"]) in away)
        # Replicas on a bounced node recover only when allocation is enabled again.
        stale = any(n.get("stale") for n in self.nodes)
        if stale and self.allocation_enabled() and not away:
            for n in self.nodes:
                n["stale"] = False
            stale = False
        status = "red" if initializing else ("yellow" if unassigned or stale else "green")
        return {
            "cluster_name": "fake-es", "status": status, "timed_out": False,
            "number_of_nodes": len(self.up()), "number_of_data_nodes": len(self.up()),
            "active_primary_shards": sum(1 for s in self.shards if s["prirep"] == "p"),
            "relocating_shards": sum(1 for s in self.shards if s["to"]),
            "initializing_shards": initializing, "unassigned_shards": unassigned + (2 if stale else 0),
        }


def flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else k, v, out)
    else:
        out[prefix] = value


class Handler(BaseHTTPRequestHandler):
    cluster = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the drills read --log
        pass

    def reply(self, status, body):
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            ctype = "application/json; charset=UTF-8"
        else:
            data = body.encode()
            ctype = "text/plain; charset=UTF-8"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, kind, reason):
        self.reply(status, {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": status})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def do_GET(self):
        self.route("GET")

    def do_PUT(self):
        self.route("PUT")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [p for p in url.path.split("/") if p]
        body = self.body() if method in ("PUT", "POST") else {}
        if body is None:
            return self.error(400, "parse_exception", "request body is not JSON")
        with LOCK:
            self.dispatch(method, parts, query, body)

    def dispatch(self, method, parts, query, body):
        c = self.cluster
        match (method, parts):
            case ("GET", []):
                return self.reply(200, {"name": "fake-es", "cluster_name": "fake-es", "version": {"number": "7.17.0"}, "tagline": "FAKE Elasticsearch (tests/drills/fake_es.py)"})
            case ("GET", ["_cluster", "health"]):
                return self.reply(200, c.health())
            case ("GET", ["_cluster", "settings"]):
                return self.reply(200, c.settings)
            case ("PUT", ["_cluster", "settings"]):
                for kind in ("persistent", "transient"):
                    flat = {}
                    flatten("", body.get(kind, {}), flat)
                    for k, v in flat.items():
                        if v is None:
                            c.settings[kind].pop(k, None)
                        else:
                            c.settings[kind][k] = v
                        c.log(event="setting", kind=kind, key=k, value=v)
                return self.reply(200, {"acknowledged": True, **c.settings})
            case ("GET", ["_cat", "nodes"]):
                for n in c.nodes:
                    if n["away"] > 0:
                        n["away"] -= 1
                        if n["away"] == 0:
                            c.log(event="rejoined", node=n["name"])
                cols = (query.get("h") or "ip,name").split(",")
                lines = [" ".join(n[col] for col in cols) for n in c.up()]
                return self.reply(200, "".join(l + "\n" for l in lines))
            case ("GET", ["_cat", "shards"]):
                c.tick_allocation()
                cols = (query.get("h") or "index,shard,prirep,state,ip,node").split(",")
                lines = []
                for s in c.shards:
                    here = c.node(s["node"])
                    if here["dead"] or here["away"]:
                        row = {"index": s["index"], "shard": str(s["shard"]), "prirep": s["prirep"], "state": "UNASSIGNED", "ip": "", "node": ""}
                    else:
                        node = s["node"]
                        if s["to"]:
                            to = c.node(s["to"])
                            node = f"{s['node']} -> {to['ip']} Xq1r2 {to['name']}"
                        row = {"index": s["index"], "shard": str(s["shard"]), "prirep": s["prirep"],
                               "state": "RELOCATING" if s["to"] else "STARTED", "ip": here["ip"], "node": node}
                    lines.append(" ".join(row[col] for col in cols).strip())
                return self.reply(200, "".join(l + "\n" for l in lines))
            case ("GET", ["_cat", "indices"]):
                lines = [f"{'red' if i['restoring'] else 'green'} open {name} 1 1 {i['docs']}" for name, i in sorted(c.indices.items())]
                if "v" in query:
                    lines.insert(0, "health status index pri rep docs.count")
                return self.reply(200, "".join(l + "\n" for l in lines))
            case ("GET", [names]) if not names.startswith("_"):
                missing = [i for i in names.split(",") if i not in c.indices]
                if missing:
                    return self.error(404, "index_not_found_exception", f"no such index [{missing[0]}]")
                return self.reply(200, {i: {"settings": {"index": {"number_of_shards": "1"}}} for i in names.split(",")})
            case ("PUT", ["_snapshot", repo]):
                if body.get("type") == "s3" and not body.get("settings", {}).get("bucket"):
                    return self.error(400, "repository_exception", f"[{repo}] No bucket defined for s3 repository")
                c.repos[repo] = body
                c.log(event="repository", name=repo, definition=body)
                return self.reply(200, {"acknowledged": True})
            case ("PUT", ["_snapshot", repo, snap]):
                if repo not in c.repos:
                    return self.error(404, "repository_missing_exception", f"[{repo}] missing")
                if snap != snap.lower():
                    return self.error(400, "invalid_snapshot_name_exception", f"[{repo}:{snap}] Invalid snapshot name [{snap}], must be lowercase")
                if snap in c.snapshots.get(repo, {}):
                    return self.error(400, "invalid_snapshot_name_exception", f"[{repo}:{snap}] Invalid snapshot name [{snap}], snapshot with the same name already exists")
                wait = query.get("wait_for_completion") == "true"
                s = c.new_snapshot(snap, "SUCCESS" if wait else "IN_PROGRESS", 0 if wait else c.args.snapshot_polls)
                c.snapshots.setdefault(repo, {})[snap] = s
                c.log(event="snapshot", repo=repo, name=snap)
                return self.reply(200, {"snapshot": public(s)} if wait else {"accepted": True})
            case ("GET", ["_snapshot", repo, "_all"]):
                if repo not in c.repos:
                    return self.error(404, "repository_missing_exception", f"[{repo}] missing")
                return self.reply(200, {"snapshots": [public(s) for s in c.snapshots.get(repo, {}).values()]})
            case ("GET", ["_snapshot", repo, snap]):
                s = c.snapshots.get(repo, {}).get(snap)
                if repo not in c.repos:
                    return self.error(404, "repository_missing_exception", f"[{repo}] missing")
                if s is None:
                    return self.error(404, "snapshot_missing_exception", f"[{repo}:{snap}] is missing")
                if s["state"] == "IN_PROGRESS":
                    s["polls"] -= 1
                    if s["polls"] <= 0:
                        s["state"] = c.args.snapshot_outcome
                        c.log(event="snapshot_done", name=snap, state=s["state"])
                return self.reply(200, {"snapshots": [public(s)]})
            case ("GET", ["_cat", "snapshots", repo]):
                if repo not in c.repos:
                    return self.error(404, "repository_missing_exception", f"[{repo}] missing")
                lines = [f"{s['snapshot']} {s['state']} {s['start_time_in_millis'] // 1000} {len(s['indices'])}" for s in c.snapshots.get(repo, {}).values()]
                if "v" in query:
                    lines.insert(0, "id status start_epoch indices")
                return self.reply(200, "".join(l + "\n" for l in lines))
            case ("POST", ["_snapshot", repo, snap, "_restore"]):
                s = c.snapshots.get(repo, {}).get(snap)
                if s is None:
                    return self.error(404, "snapshot_missing_exception", f"[{repo}:{snap}] is missing")
                if s["state"] != "SUCCESS":
                    return self.error(500, "snapshot_restore_exception", f"[{repo}:{snap}] unsupported snapshot state [{s['state']}]")
                open_ = [i for i in s["indices"] if i in c.indices]
                if open_:
                    return self.error(500, "snapshot_restore_exception", f"[{repo}:{snap}] cannot restore index [{open_[0]}] because an open index with same name already exists in the cluster")
                for i in s["indices"]:
                    c.indices[i] = {"docs": 100 + 7 * len(i), "restoring": c.args.restore_polls}
                c.log(event="restore", repo=repo, name=snap, indices=s["indices"])
                return self.reply(200, {"accepted": True})
            case ("POST", ["_fake", "bounce", key]):
                n = c.node(key)
                if n is None:
                    return self.error(404, "fake_exception", f"no node {key}")
                c.log(event="bounce", node=n["name"])
                if n["name"] == c.args.fail_node or n["ip"] == c.args.fail_node:
                    n["dead"] = True
                    return self.error(500, "fake_exception", f"node {n['name']} failed to start again")
                n["away"] = 2
                n["stale"] = True
                return self.reply(200, {"bounced": n["name"]})
            case _:
                return self.error(400, "illegal_argument_exception", f"FAKE Elasticsearch does not know {method} /{'/'.join(parts)}")


def public(s):
    return {k: v for k, v in s.items() if k != "polls"}


def main():
    p = argparse.ArgumentParser(description="FAKE Elasticsearch for the drills")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", default="/dev/null")
    p.add_argument("--nodes", default="es-1:10.0.0.1:safe,es-2:10.0.0.2:safe,es-3:10.0.0.3:safe,spot-1:10.0.0.11:spot,spot-2:10.0.0.12:spot")
    p.add_argument("--indices", default="nuvla-job,nuvla-user,nuvla-session")
    p.add_argument("--snapshots", default="", help="repo:name:STATE,… present at start")
    p.add_argument("--snapshot-polls", type=int, default=3)
    p.add_argument("--snapshot-outcome", default="SUCCESS")
    p.add_argument("--restore-polls", type=int, default=3)
    p.add_argument("--fail-node", default="")
    args = p.parse_args()
    Handler.cluster = Cluster(args)
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
