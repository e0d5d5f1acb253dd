#!/usr/bin/env python3
"""Checks deploy/ (kustomize base, overlays, Containerfile) without a cluster.

    tests/deploy/check_manifests.py [--build-dir BUILD] [--repo ROOT]

Renders deploy/kustomize/base and every overlay with `kubectl kustomize`,
then asserts on the rendered objects what docs/deploy.md promises: every
container has requests and limits, probes (long-running ones), the
restricted security context; every Deployment has an HPA and a PDB;
Services point at real container ports; NetworkPolicies cover every
component and every Service port; no Secret carries a real value; images
map to deploy/Containerfile targets; every flag, KOPT_ variable and config
key exists in the binary's real --help (when BUILD holds that binary);
yamllint is clean; the Containerfile's references exist.

Exit 0 all good, 1 on any violation, 77 (meson's "skipped") when kubectl is
not installed. Python 3 standard library plus PyYAML (python3-yaml, which
yamllint depends on).
"""

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    print("check_manifests: PyYAML missing (apt-get install python3-yaml)", file=sys.stderr)
    sys.exit(1)

BINARIES = {  # binary -> source folder (and build subfolder)
    "kopt-agent": "agent",
    "kopt-ingest": "ingest",
    "kopt-aggregator": "aggregator",
    "kopt-advisor": "advisor",
}
IMAGE_RE = re.compile(r"^ghcr\.io/kopt/(kopt-[a-z]+):(\S+)$")
THIRD_PARTY = {  # dev-only images: repository -> why allowed
    "nats": "overlays/dev in-cluster JetStream",
    "clickhouse/clickhouse-server": "overlays/dev in-cluster ClickHouse",
}
PLACEHOLDER_RE = re.compile(r"(?i)(change-?me|placeholder|example|dummy)")
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet", "CronJob", "Job")
OVERLAYS = ("base", "overlays/dev", "overlays/production")


class Report:
    def __init__(self):
        self.failures = []
        self.notes = []
        self.passed = 0

    def check(self, ok, where, what):
        if ok:
            self.passed += 1
        else:
            self.failures.append(f"{where}: {what}")
        return ok

    def fail(self, where, what):
        self.check(False, where, what)

    def note(self, text):
        self.notes.append(text)


# ---------------------------------------------------------------- helpers


def load_help(build_dir, binary, cache={}):
    """Flags, env names and the raw text of `binary --help`, or None."""
    if binary in cache:
        return cache[binary]
    result = None
    if build_dir:
        path = os.path.join(build_dir, BINARIES[binary], binary)
        if os.access(path, os.X_OK):
            p = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
            text = p.stdout + p.stderr
            flags = set(re.findall(r"^\s+--([a-z0-9][a-z0-9-]*)", text, re.M))
            envs = set(re.findall(r"\benv (KOPT_[A-Z0-9_]+)", text))
            result = {"path": path, "rc": p.returncode, "flags": flags, "envs": envs, "text": text}
    cache[binary] = result
    return result


def pod_specs(obj):
    """(pod spec, pod labels, long_running) of a workload object."""
    kind = obj["kind"]
    spec = obj.get("spec", {})
    if kind == "CronJob":
        tpl = spec["jobTemplate"]["spec"]["template"]
        return tpl.get("spec", {}), tpl.get("metadata", {}).get("labels", {}), False
    tpl = spec["template"]
    return tpl.get("spec", {}), tpl.get("metadata", {}).get("labels", {}), kind != "Job"


def selector_matches(selector, labels):
    """A label selector ({matchLabels, matchExpressions} or a plain map)."""
    if selector is None:
        return False
    if "matchLabels" in selector or "matchExpressions" in selector:
        match = selector.get("matchLabels", {})
    else:
        match = selector
    for k, v in match.items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        k, op, vals = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and labels.get(k) in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def container_ports(pod):
    ports = {}
    for c in pod.get("containers", []):
        for p in c.get("ports", []):
            ports[p["containerPort"]] = p.get("name")
            if p.get("name"):
                ports[p["name"]] = p["containerPort"]
    return ports


def resolve_port(port, pod):
    """A probe/Service port (number or name) to a number, or None."""
    ports = container_ports(pod)
    if isinstance(port, int):
        return port if port in ports else None
    value = ports.get(port)
    return value if isinstance(value, int) else None


def addr_port(addr):
    m = re.search(r":(\d+)$", str(addr))
    return int(m.group(1)) if m else None


# ----------------------------------------------------------- object checks


def check_container(r, where, c, pod, long_running, init, by_kind, build_dir):
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        got = res.get(part, {})
        r.check("cpu" in got and "memory" in got, where, f"resources.{part} needs cpu and memory")

    sc = c.get("securityContext", {})
    psc = pod.get("securityContext", {})
    r.check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where, "runAsNonRoot must be true")
    r.check(sc.get("readOnlyRootFilesystem") is True, where, "readOnlyRootFilesystem must be true")
    r.check(sc.get("allowPrivilegeEscalation") is False, where, "allowPrivilegeEscalation must be false")
    r.check(sc.get("privileged") is not True, where, "must not be privileged")
    caps = sc.get("capabilities", {})
    r.check("ALL" in caps.get("drop", []), where, "capabilities.drop must contain ALL")
    r.check(not caps.get("add"), where, f"capabilities.add must be empty, got {caps.get('add')}")
    seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
    r.check(seccomp == "RuntimeDefault", where, f"seccompProfile must be RuntimeDefault, got {seccomp}")
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    r.check(isinstance(uid, int) and uid > 0, where, "runAsUser must be a non-zero uid")

    image = c.get("image", "")
    m = IMAGE_RE.match(image)
    binary = None
    if m:
        binary = m.group(1)
        r.check(binary in by_kind["targets"], where,
                f"image {image}: no `FROM ... AS {binary}` in deploy/Containerfile")
        r.check(m.group(2) == by_kind["version"], where,
                f"image {image}: tag must be the project version {by_kind['version']}")
    else:
        repo, _, tag = image.rpartition(":")
        ok = repo in THIRD_PARTY and tag and tag != "latest" and "/" not in tag
        r.check(ok, where, f"image {image!r} is neither ghcr.io/kopt/kopt-<binary>:<version> "
                           f"nor a pinned allowed third-party image ({', '.join(THIRD_PARTY)})")

    probes = ("readinessProbe", "livenessProbe")
    if init or not long_running:
        r.check(not any(p in c for p in probes + ("startupProbe",)), where,
                "init and Job containers cannot have probes")
    else:
        for p in probes:
            probe = c.get(p)
            if not r.check(probe is not None, where, f"{p} missing"):
                continue
            kind = next((k for k in ("httpGet", "tcpSocket", "grpc") if k in probe), None)
            if not r.check(kind is not None, where, f"{p} must be httpGet, tcpSocket or grpc"):
                continue
            port = probe[kind].get("port")
            r.check(resolve_port(port, pod) is not None, where,
                    f"{p} port {port!r} is not a port of the pod")
            if binary:
                want = "/readyz" if p == "readinessProbe" else "/healthz"
                r.check(kind == "httpGet" and probe["httpGet"].get("path") == want
                        and port == "admin", where, f"{p} must be httpGet {want} on port admin")

    if binary:
        check_kopt_args(r, where, c, pod, binary, long_running and not init, by_kind, build_dir)


def check_kopt_args(r, where, c, pod, binary, serves, by_kind, build_dir):
    """Flags, env and config keys against the binary's real --help."""
    args = [str(a) for a in c.get("args", [])] + [str(a) for a in c.get("command", [])[1:]]
    flags = [a[2:].split("=", 1)[0] for a in args if a.startswith("--")]
    positional = []
    skip_next = False
    for a in args:
        if skip_next:
            skip_next = False
            continue
        if a.startswith("--"):
            skip_next = "=" not in a and a[2:] in ("config",)
            continue
        positional.append(a)
    envs = [e["name"] for e in c.get("env", []) if e["name"].startswith("KOPT_")]

    # The config file passed with --config, read from its ConfigMap.
    config = {}
    if "--config" in args:
        path = args[args.index("--config") + 1]
        mount = next((m for m in c.get("volumeMounts", [])
                      if m["mountPath"] == path or path.startswith(m["mountPath"].rstrip("/") + "/")), None)
        if r.check(mount is not None, where, f"--config {path} is not a mounted file"):
            vol = next(v for v in pod.get("volumes", []) if v["name"] == mount["name"])
            cm_name = vol.get("configMap", {}).get("name")
            cm = by_kind["ConfigMap"].get(cm_name)
            if r.check(cm is not None, where, f"--config ConfigMap {cm_name} not in the output"):
                key = mount.get("subPath") or os.path.basename(path)
                text = cm.get("data", {}).get(key)
                if r.check(text is not None, where, f"ConfigMap {cm_name} has no key {key}"):
                    config = yaml.safe_load(text) or {}
                    r.check(isinstance(config, dict), where, f"{cm_name}/{key} is not a mapping")
    else:
        r.fail(where, "kopt containers take their settings with --config FILE")

    # Plaintext is for local development only (DESIGN.md: Security).
    r.check("insecure" not in flags and str(config.get("insecure", "false")).lower() in ("false", "no", "off", "0")
            and not any(e.get("name") == "KOPT_INSECURE" for e in c.get("env", [])), where,
            "--insecure must not be used in the manifests")

    # Ports named in the config agree with the container's ports.
    if serves:
        ports = container_ports(pod)
        for key, name in (("admin-listen", "admin"), ("listen", "grpc"), ("http-listen", "http")):
            if key in config or name in ports:
                r.check(addr_port(config.get(key)) == ports.get(name), where,
                        f"config {key}={config.get(key)!r} but container port {name}={ports.get(name)}")

    help_ = load_help(build_dir, binary)
    if help_ is None:
        by_kind["skipped"].add(binary)
        return
    by_kind["verified"].add(binary)
    for f in flags:
        r.check(f in help_["flags"], where, f"--{f} is not a flag of {binary} (its --help)")
    for e in envs:
        r.check(e in help_["envs"], where, f"env {e} is not a setting of {binary} (its --help)")
    for k in config:
        r.check(k in help_["flags"], where, f"config key {k!r} is not a setting of {binary}")
    for word in positional:
        r.check(re.search(r"\b%s\b" % re.escape(word), help_["text"]) is not None, where,
                f"subcommand {word!r} is not mentioned in {binary} --help")


NATS_COMPONENTS = ("ingest", "aggregator", "advisor")


def check_nats_credentials(r, name, pods, configs, get):
    """Each component logs in to NATS as itself: it mounts its own
    kopt-nats-<component> Secret and no other component's, and its config
    names that user and a password file inside that mount (issue 15)."""
    for (where, pod, labels, w) in pods:
        m = re.match(r"kopt-([a-z]+)", w["metadata"]["name"])
        own = m.group(1) if m else ""
        vols = {v["name"]: v["secret"]["secretName"] for v in pod.get("volumes", []) if "secret" in v}
        nats_secrets = {n: sec for n, sec in vols.items()
                        if sec.startswith("kopt-nats-") and sec != "kopt-nats-ca"}
        for sec in nats_secrets.values():
            r.check(sec == f"kopt-nats-{own}", where,
                    f"mounts {sec}: a component mounts only its own NATS credentials")
        cfg_vols = [v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v]
        keys = [m.group(1) for m in (re.match(r"(kopt-[a-z]+)-config", c) for c in cfg_vols) if m]
        cfg = next((configs[k] for k in keys if k in configs), {}) or {}
        user = cfg.get("nats-user")
        pw = str(cfg.get("nats-password-file") or "")
        if user or pw:
            r.check(user == f"kopt-{own}", where, f"nats-user {user!r} must be kopt-{own}")
            mounts = [mt["mountPath"] for c in pod.get("containers", []) for mt in c.get("volumeMounts", [])
                      if mt["name"] in nats_secrets]
            r.check(any(pw.startswith(mp.rstrip("/") + "/") for mp in mounts), where,
                    f"nats-password-file {pw!r} is not in its own kopt-nats-{own} Secret mount")
            ca = str(cfg.get("nats-ca") or "")
            ca_mounts = [mt["mountPath"] for c in pod.get("containers", []) for mt in c.get("volumeMounts", [])
                         if vols.get(mt["name"]) == "kopt-nats-ca"]
            r.check(bool(ca) and any(ca.startswith(mp.rstrip("/") + "/") for mp in ca_mounts), where,
                    f"nats-ca {ca!r} must be in the kopt-nats-ca Secret mount")
        if name == "overlays/production" and own in NATS_COMPONENTS:
            r.check(f"kopt-nats-{own}" in nats_secrets.values(), where,
                    f"production: mounts its own NATS credentials (Secret kopt-nats-{own})")
            r.check(bool(user) and bool(pw), where,
                    "production: nats-user and nats-password-file set")
    if name == "overlays/production":
        auth = [cm for cm in get("ConfigMap") if cm["metadata"]["name"].startswith("kopt-nats-auth")]
        if r.check(len(auth) == 1, name, "production: the kopt-nats-auth ConfigMap (nats/kopt-auth.conf)"):
            conf = auth[0]["data"]["kopt-auth.conf"]
            users = re.findall(r'\{user: "([^"]+)", password: \$([A-Z_]+)', conf)
            r.check(sorted(u for u, _ in users) == sorted(f"kopt-{c}" for c in NATS_COMPONENTS), name,
                    f"production: kopt-auth.conf users {users}")
            r.check(all(pw == f"KOPT_NATS_{u[5:].upper()}_PASSWORD" for u, pw in users), name,
                    "production: kopt-auth.conf passwords come from the environment")
            r.check("publish: {allow: [\">\"]" not in conf and '">"' not in conf, name,
                    "production: no NATS user may use every subject")



def check_rendered(r, name, docs, ctx, build_dir):
    by_kind = {"ConfigMap": {}, "targets": ctx["targets"], "version": ctx["version"],
               "skipped": ctx["skipped"], "verified": ctx["verified"]}
    objs = {}
    for d in docs:
        objs.setdefault(d["kind"], []).append(d)
        if d["kind"] == "ConfigMap":
            by_kind["ConfigMap"][d["metadata"]["name"]] = d
    get = lambda kind: objs.get(kind, [])  # noqa: E731

    for d in docs:
        r.check(d["metadata"].get("namespace", "kopt") == "kopt" or d["kind"] in (
            "ClusterRole", "ClusterRoleBinding", "Namespace"), f"{name}: {d['kind']}/{d['metadata']['name']}",
            "namespaced objects live in namespace kopt")
    r.check(any(n["metadata"]["name"] == "kopt" for n in get("Namespace")), name, "Namespace kopt missing")

    workloads = [w for k in WORKLOAD_KINDS for w in get(k)]
    pods = []  # (where, pod spec, labels, obj)
    for w in workloads:
        where = f"{name}: {w['kind']}/{w['metadata']['name']}"
        pod, labels, long_running = pod_specs(w)
        pods.append((where, pod, labels, w))
        for init, key in ((False, "containers"), (True, "initContainers")):
            for c in pod.get(key, []):
                check_container(r, f"{where} {key[:-1]} {c['name']}", c, pod, long_running, init,
                                by_kind, build_dir)
        # hostPath: the agent DaemonSet only, read-only.
        host = {v["name"] for v in pod.get("volumes", []) if "hostPath" in v}
        if host:
            r.check(w["kind"] == "DaemonSet" and w["metadata"]["name"] == "kopt-agent", where,
                    "hostPath volumes are for the agent DaemonSet only")
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                for m in c.get("volumeMounts", []):
                    if m["name"] in host:
                        r.check(m.get("readOnly") is True, where, f"hostPath mount {m['mountPath']} must be readOnly")
        r.check(not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"),
                where, "no hostNetwork, hostPID or hostIPC")
        token = pod.get("automountServiceAccountToken")
        if w["metadata"]["name"] != "kopt-agent":
            r.check(token is False, where, "automountServiceAccountToken must be false (no API access needed)")

    # DaemonSet: every node.
    for ds in get("DaemonSet"):
        tol = ds["spec"]["template"]["spec"].get("tolerations", [])
        r.check(any(t.get("operator") == "Exists" and not t.get("key") for t in tol),
                f"{name}: DaemonSet/{ds['metadata']['name']}", "must tolerate every taint (operator: Exists)")

    # Deployments: HPA, PDB, spread.
    hpas = get("HorizontalPodAutoscaler")
    for dep in get("Deployment"):
        dn = dep["metadata"]["name"]
        where = f"{name}: Deployment/{dn}"
        labels = dep["spec"]["template"]["metadata"]["labels"]
        hpa = [h for h in hpas if h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
               and h["spec"]["scaleTargetRef"]["name"] == dn]
        r.check(len(hpa) == 1, where, "needs exactly one HorizontalPodAutoscaler")
        for h in hpa:
            r.check(h["apiVersion"] == "autoscaling/v2", where, "HPA must be autoscaling/v2")
            r.check(h["spec"].get("minReplicas", 1) <= h["spec"]["maxReplicas"], where, "HPA min > max")
        pdb = [p for p in get("PodDisruptionBudget") if selector_matches(p["spec"]["selector"], labels)]
        r.check(len(pdb) == 1, where, "needs exactly one PodDisruptionBudget selecting its pods")
        keys = {t["topologyKey"] for t in dep["spec"]["template"]["spec"].get("topologySpreadConstraints", [])}
        r.check({"topology.kubernetes.io/zone", "kubernetes.io/hostname"} <= keys, where,
                "topologySpreadConstraints across zones and nodes")
        if name == "overlays/production":
            for h in hpa:
                r.check(h["spec"].get("minReplicas", 1) >= 3, where, "production: HPA minReplicas >= 3")
            aff = dep["spec"]["template"]["spec"].get("affinity", {}).get("podAntiAffinity")
            r.check(bool(aff), where, "production: podAntiAffinity")
            zone = [t for t in dep["spec"]["template"]["spec"]["topologySpreadConstraints"]
                    if t["topologyKey"] == "topology.kubernetes.io/zone"]
            r.check(all(t["whenUnsatisfiable"] == "DoNotSchedule" for t in zone), where,
                    "production: zone spread is DoNotSchedule")
        if name == "overlays/dev":
            for h in hpa:
                r.check(h["spec"].get("minReplicas", 1) == 1, where, "dev: one replica (HPA minReplicas 1)")
    for h in hpas:
        ref = h["spec"]["scaleTargetRef"]
        r.check(any(d["metadata"]["name"] == ref["name"] for d in get(ref["kind"])),
                f"{name}: HPA/{h['metadata']['name']}", f"targets missing {ref['kind']}/{ref['name']}")

    # Services -> pods -> container ports.
    nps = get("NetworkPolicy")
    for svc in get("Service"):
        where = f"{name}: Service/{svc['metadata']['name']}"
        sel = svc["spec"].get("selector", {})
        targets = [(w, p) for (w, p, labels, _) in pods if selector_matches({"matchLabels": sel}, labels)]
        if not r.check(bool(sel) and bool(targets), where, "selector matches no workload"):
            continue
        for port in svc["spec"]["ports"]:
            tp = port.get("targetPort", port["port"])
            for (w, p) in targets:
                num = resolve_port(tp, p)
                if not r.check(num is not None, where, f"targetPort {tp!r} is not a container port of {w}"):
                    continue
                labels = next(lb for (ww, pp, lb, _) in pods if ww == w)
                allowed = False
                for np_ in nps:
                    if not np_["spec"].get("podSelector") or not selector_matches(np_["spec"]["podSelector"], labels):
                        continue
                    for rule in np_["spec"].get("ingress", []) or []:
                        rports = rule.get("ports")
                        if not rports or any(rp.get("port") in (num, tp, port.get("name")) for rp in rports):
                            allowed = True
                r.check(allowed, where, f"no NetworkPolicy lets traffic in to port {num} of {w}")

    # NetworkPolicies: a default deny, and one for every component.
    r.check(any(np_["spec"].get("podSelector") == {} and set(np_["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
                and not np_["spec"].get("ingress") and not np_["spec"].get("egress") for np_ in nps),
            name, "a default-deny NetworkPolicy (podSelector {}, Ingress+Egress)")
    for (where, pod, labels, w) in pods:
        own = [np_ for np_ in nps if np_["spec"].get("podSelector") and selector_matches(np_["spec"]["podSelector"], labels)]
        r.check(bool(own), where, "no NetworkPolicy selects its pods")
        for np_ in own:
            r.check(set(np_["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}, where,
                    f"NetworkPolicy {np_['metadata']['name']} must cover Ingress and Egress")

    # Secrets: never a real value in the manifests.
    produced = set()
    for s in get("Secret"):
        produced.add(s["metadata"]["name"])
        for k, v in (s.get("data") or {}).items():
            value = base64.b64decode(v).decode("utf-8", "replace")
            r.check(value == "" or PLACEHOLDER_RE.search(value), f"{name}: Secret/{s['metadata']['name']}",
                    f"key {k} holds a non-placeholder value")
        for k, v in (s.get("stringData") or {}).items():
            r.check(v == "" or PLACEHOLDER_RE.search(str(v)), f"{name}: Secret/{s['metadata']['name']}",
                    f"key {k} holds a non-placeholder value")
    certs = get("Certificate")
    produced |= {c["spec"]["secretName"] for c in certs}
    produced |= {i["spec"]["tls"][0]["secretName"] for i in get("Ingress") if i["spec"].get("tls")}
    referenced = set()
    for (where, pod, labels, w) in pods:
        for v in pod.get("volumes", []):
            if "secret" in v:
                referenced.add(v["secret"]["secretName"])
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add(ref["name"])
    external = sorted(referenced - produced)
    if external:
        r.note(f"{name}: Secrets to create before applying: {', '.join(external)}")
    if certs:
        r.check(not [s for s in external if s.endswith("-tls")], name,
                f"TLS Secrets not issued by a Certificate: {[s for s in external if s.endswith('-tls')]}")

    # Certificates: names and the agent identity.
    cluster = None
    for cm in get("ConfigMap"):
        if cm["metadata"]["name"] == "kopt-cluster":
            cluster = cm["data"]["cluster"]
    for c in certs:
        where = f"{name}: Certificate/{c['metadata']['name']}"
        spec = c["spec"]
        if spec.get("isCA"):
            continue
        if c["metadata"]["name"] == "kopt-agent":
            uris = spec.get("uris", [])
            ok = len(uris) == 1 and re.match(r"^spiffe://kopt/cluster/([a-z0-9.-]+)/agent/([A-Za-z0-9._-]+)$", uris[0])
            if r.check(bool(ok), where, f"URI SAN must be spiffe://kopt/cluster/<cluster>/agent/<id>, got {uris}"):
                r.check(ok.group(1) == cluster, where,
                        f"URI SAN cluster {ok.group(1)!r} != kopt-cluster ConfigMap {cluster!r}")
            r.check("client auth" in spec.get("usages", []), where, "agent certificate needs client auth")
        else:
            svc = c["metadata"]["name"]
            want = {svc, f"{svc}.kopt.svc", f"{svc}.kopt.svc.cluster.local"}
            r.check(want <= set(spec.get("dnsNames", [])), where, f"dnsNames must include {sorted(want)}")
            r.check("server auth" in spec.get("usages", []), where, "server certificate needs server auth")

    # RBAC: read-only, nothing broad.
    for role in get("ClusterRole") + get("Role"):
        where = f"{name}: {role['kind']}/{role['metadata']['name']}"
        for rule in role.get("rules", []):
            r.check(set(rule.get("verbs", [])) <= {"get", "list", "watch"}, where, f"write verbs {rule['verbs']}")
            r.check("*" not in rule.get("resources", []) + rule.get("apiGroups", []) + rule.get("verbs", []),
                    where, "no wildcards")
            r.check(not {"secrets", "nodes/proxy", "pods/exec"} & set(rule.get("resources", [])), where,
                    f"too broad: {rule.get('resources')}")

    # The scheduled analysis.
    cron = [c for c in get("CronJob")
            if "analyze" in c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0].get("args", [])]
    r.check(len(cron) == 1 and "--once" in cron[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
            and "kopt-advisor" in cron[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
            name, "a CronJob running `kopt-advisor analyze --once`")

    # Overlay specifics.
    configs = {}
    for cm in get("ConfigMap"):
        if re.match(r"kopt-[a-z]+-config", cm["metadata"]["name"]):
            configs[re.match(r"(kopt-[a-z]+)-config", cm["metadata"]["name"]).group(1)] = \
                yaml.safe_load(cm["data"]["config.yaml"])
    check_nats_credentials(r, name, pods, configs, get)
    if name == "overlays/dev":
        for n in ("kopt-nats", "kopt-clickhouse"):
            r.check(any(s["metadata"]["name"] == n for s in get("StatefulSet")), name, f"dev: StatefulSet {n}")
        nats = [c for s in get("StatefulSet") for c in s["spec"]["template"]["spec"]["containers"] if c["name"] == "nats"]
        r.check(bool(nats) and any(a in ("-js", "--jetstream") for a in nats[0].get("args", [])), name,
                "dev: NATS runs with JetStream")
    if name == "overlays/production":
        r.check(configs.get("kopt-ingest", {}).get("stream-replicas") == 3, name, "production: ingest stream-replicas 3")
        for b in ("kopt-ingest", "kopt-aggregator", "kopt-advisor"):
            url = str(configs.get(b, {}).get("nats-url", ""))
            r.check(url and "kopt-nats" not in url, name, f"production: {b} nats-url must be the external cluster")
        for b in ("kopt-aggregator", "kopt-advisor"):
            url = str(configs.get(b, {}).get("clickhouse-url", ""))
            r.check(url and "kopt-clickhouse" not in url, name, f"production: {b} clickhouse-url must be external")
        r.check(not get("StatefulSet"), name, "production: no in-cluster NATS/ClickHouse")
        sms = get("ServiceMonitor")
        for svc in get("Service"):
            for port in svc["spec"]["ports"]:
                if port.get("name") != "admin":
                    continue
                labels = svc["metadata"].get("labels", {})
                r.check(any(selector_matches(sm["spec"]["selector"], labels)
                            and any(e.get("port") == "admin" for e in sm["spec"]["endpoints"]) for sm in sms),
                        f"{name}: Service/{svc['metadata']['name']}", "production: no ServiceMonitor scrapes its admin port")
        ing = [i for i in get("Ingress") if any(
            p["backend"]["service"]["name"] == "kopt-advisor" for rule in i["spec"]["rules"] for p in rule["http"]["paths"])]
        r.check(len(ing) == 1 and ing[0]["spec"].get("tls"), name, "production: a TLS Ingress for kopt-advisor")
        if ing:
            port = ing[0]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]
            r.check(port.get("name") == "http" or port.get("number") == 7411, name,
                    "production: the Ingress targets the HTTP gateway (7411)")
    return len(docs)


# ------------------------------------------------------- files of the repo


def check_containerfile(r, repo, build_dir):
    path = os.path.join(repo, "deploy", "Containerfile")
    if not r.check(os.path.isfile(path), "deploy/Containerfile", "missing"):
        return set()
    text = open(path).read()
    logical = re.sub(r"\\\n", " ", text)
    targets = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", logical, re.M | re.I))
    for b in BINARIES:
        r.check(b in targets, "deploy/Containerfile", f"no target {b}")
    for line in logical.splitlines():
        m = re.match(r"^FROM\s+(\S+)", line, re.I)
        if m and m.group(1) not in targets:
            r.check(m.group(1).startswith("debian:12"), "deploy/Containerfile", f"base image {m.group(1)} is not debian:12")
    # Each target: its binary, a non-root numeric user, an entrypoint.
    stages = re.split(r"^(?=FROM\s)", logical, flags=re.M | re.I)
    for st in stages:
        m = re.match(r"FROM\s+\S+\s+AS\s+(kopt-[a-z]+)", st, re.I)
        if not m:
            continue
        b = m.group(1)
        r.check(f"/usr/local/bin/{b}" in st and re.search(r"^ENTRYPOINT .*" + re.escape(b), st, re.M),
                f"deploy/Containerfile {b}", "copies and runs its own binary")
        user = re.search(r"^USER\s+(\d+)(?::(\d+))?", st, re.M)
        r.check(bool(user) and int(user.group(1)) != 0, f"deploy/Containerfile {b}", "USER must be a non-zero uid")
    # COPY sources exist in the repo.
    for m in re.finditer(r"^COPY\s+(?!--from)(.+)$", logical, re.M):
        srcs = m.group(1).split()[:-1]
        for s in srcs:
            if s.startswith("--"):
                continue
            r.check(os.path.exists(os.path.join(repo, s)), "deploy/Containerfile", f"COPY source {s} not in the repo")
    r.check(os.path.isfile(os.path.join(repo, "meson.build")), "deploy/Containerfile", "meson.build missing")
    # meson -D options exist.
    opts = open(os.path.join(repo, "meson_options.txt")).read()
    for o in re.findall(r"-D([a-z_]+)=", logical):
        builtin = o in ("buildtype", "werror", "b_ndebug", "prefix", "strip")
        r.check(builtin or f"option('{o}'" in opts, "deploy/Containerfile", f"-D{o} is not in meson_options.txt")
    # Build packages are those of scripts/deps.
    deps = open(os.path.join(repo, "scripts", "deps")).read()
    known = set()
    for var in ("packages", "bare_packages"):
        m = re.search(r'^%s="([^"]*)"' % var, deps, re.M)
        if m:
            known |= set(m.group(1).split())
    build = stages[1] if len(stages) > 1 else ""
    pkgs = set()
    for m in re.finditer(r"apt-get install -y --no-install-recommends\s+((?:[a-z0-9][a-z0-9.+-]*\s*)+)", build):
        pkgs |= set(m.group(1).split())
    r.check(bool(pkgs), "deploy/Containerfile", "build stage installs no packages?")
    for p in sorted(pkgs - known):
        r.fail("deploy/Containerfile", f"build package {p} is not in scripts/deps")
    # Binaries: built by meson with install: true where their folder exists.
    for b, folder in BINARIES.items():
        mb = os.path.join(repo, folder, "meson.build")
        if not os.path.isfile(mb):
            r.note(f"Containerfile target {b}: {folder}/ not in the repo yet (image cannot build until it lands)")
            continue
        src = open(mb).read()
        m = re.search(r"executable\(\s*'%s'(.*?)\)\s*$" % re.escape(b), src, re.S | re.M)
        if not m:
            r.note(f"Containerfile target {b}: {folder}/meson.build has no executable('{b}') yet")
            continue
        r.check("install: true" in m.group(0), f"{folder}/meson.build", f"executable('{b}') needs install: true "
                "(the Containerfile copies it from meson install)")
    return targets


def run_yamllint(r, repo):
    exe = shutil.which("yamllint")
    if not r.check(exe is not None, "yamllint", "not installed (scripts/deps installs it)"):
        return
    p = subprocess.run([exe, "-f", "parsable", "-c", os.path.join(repo, "deploy", ".yamllint"),
                        os.path.join(repo, "deploy")], capture_output=True, text=True)
    out = (p.stdout + p.stderr).strip()
    r.check(p.returncode == 0 and not out, "yamllint deploy/", "\n    " + out.replace("\n", "\n    "))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", help="meson build root holding the binaries (ingest/kopt-ingest, ...)")
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(here)))
    a = ap.parse_args()
    repo = a.repo
    r = Report()

    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("check_manifests: SKIP: kubectl not installed (needed for `kubectl kustomize`)")
        return 77

    version = re.search(r"version:\s*'([^']+)'", open(os.path.join(repo, "meson.build")).read()).group(1)
    targets = check_containerfile(r, repo, a.build_dir)
    ctx = {"targets": targets, "version": version, "skipped": set(), "verified": set()}

    rendered = {}
    for ov in OVERLAYS:
        d = os.path.join(repo, "deploy", "kustomize", ov)
        p = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True, timeout=120)
        if not r.check(p.returncode == 0, f"kubectl kustomize {ov}", p.stderr.strip()):
            continue
        try:
            docs = [x for x in yaml.safe_load_all(p.stdout) if x]
        except yaml.YAMLError as e:
            r.fail(f"kubectl kustomize {ov}", f"output is not YAML: {e}")
            continue
        rendered[ov] = check_rendered(r, ov, docs, ctx, a.build_dir)

    run_yamllint(r, repo)

    print("check_manifests: deploy/ checks")
    for ov in OVERLAYS:
        print(f"  rendered {ov}: " + (f"{rendered[ov]} objects" if ov in rendered else "FAILED"))
    for b in BINARIES:
        if b in ctx["verified"]:
            print(f"  flags of {b}: checked against {load_help(a.build_dir, b)['path']} --help")
        elif b in ctx["skipped"]:
            print(f"  flags of {b}: skipped: not built" + ("" if a.build_dir else " (no --build-dir)"))
    for n in r.notes:
        print(f"  note: {n}")
    print(f"  assertions passed: {r.passed}")
    if r.failures:
        print(f"FAIL: {len(r.failures)} violation(s):")
        for f in r.failures:
            print(f"  - {f}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
