#!/usr/bin/env python3
"""Checks that the Kubernetes manifests agree with the code.

What the code says is read from the Rust sources, never restated here: every
setting is a clap field with `env = "NAME"` (services/<svc>/src and the
structs of libs/ it flattens in), its listen address and default port, the
gRPC service names its health reporter registers (app.rs, proto/), the HTTP
health route of a web server (the console's and the Open311 gateway's
`.route("/healthz", get(...))`), the URLs by which one process calls a service
(DISPATCH311_<SVC>_URL), which setting needs which ("X needs Y" in the code's
errors) and which must be https://, a token signer built at every start (its
key then required), the drain timeout (libs/grpc/src/server.rs). Each overlay,
rendered by `kubectl kustomize`, must then hold, for every service and web
server:

- only environment variables the process reads, and every one it requires
  (and every one a setting it sets needs); booleans that are true or false;
- container ports that are the ports its listen, health and metrics
  addresses name; for a gRPC service, probes on the plaintext health port
  asking for a service name the server registers; for a web server, HTTP GET
  probes of its health route on its HTTP port; a Service whose target ports
  exist;
- file settings (JWKS, keys, API keys, certificates, rules) that point into a
  mounted volume holding that file, never through subPath (which never sees
  an update); a writable photo directory if one is used;
- clients' URLs that name the called service's Service, port and scheme;
- NetworkPolicies that let in exactly the calls the code makes between the
  processes (and let the caller out to them), and out to PostgreSQL and
  Redis only a process that reads DATABASE_URL and REDIS_URL;
- the console: a way to sign in (the identity provider or the development
  sign-in); in production the identity provider, secure cookies, and never
  the development sign-in or a signing key;
- a process that signs tokens with a key of its own (the Open311 gateway):
  in production a key id set, not the development key's default;
- the pod rules: non-root, read-only root, no privilege escalation, dropped
  capabilities, seccomp, requests and limits, a grace period longer than the
  drain plus the preStop pause; no Secret with values; ConfigMaps under 1 MiB;
  every referenced Secret and key documented in deploy/k8s/README.md.

Usage: check-agreement.py [OVERLAY_DIR | NAME=RENDERED.yaml]...
(default: every directory under deploy/k8s/overlays, rendered with kubectl).
Needs PyYAML. Exits 1 listing every disagreement.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
# the gRPC services (each serves its API, grpc.health.v1 and /metrics)
SERVICES = ["intake", "routing", "dispatch", "survey"]
# the web servers in front of them (HTTP, a health route, /metrics), which call
# the services but are called by none: the console (browsers) and the Open311
# gateway (311 apps)
HTTP_SERVERS = ["console", "open311"]
PROCESSES = SERVICES + HTTP_SERVERS
CONFIGMAP_LIMIT = 1024 * 1024

# ---------------------------------------------------------------- the code


@dataclass
class Setting:
    env: str
    flag: str | None
    required: bool
    default: str | None
    ty: str = ""


@dataclass
class Code:
    """What one service's (or a web server's) code reads and does."""

    service: str
    # "grpc": a service (API, health port, metrics); "http": a web server
    kind: str = "grpc"
    settings: dict[str, Setting] = field(default_factory=dict)
    # variables read outside clap, and whole families (OTEL_*, AWS_*)
    other_vars: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)
    served: list[str] = field(default_factory=list)
    health_names: set[str] = field(default_factory=set)
    # DISPATCH311_<SVC>_URL variable -> called service
    calls: dict[str, str] = field(default_factory=dict)
    # an HTTP server's health routes (GET)
    health_paths: set[str] = field(default_factory=set)
    # "X needs Y" from the code's errors: a setting that, when set, needs others
    needs: dict[str, set[str]] = field(default_factory=dict)
    # settings the code refuses unless https:// (http:// only on loopback)
    https_only: set[str] = field(default_factory=set)
    # signs tokens with a key of its own at every start (the Open311 gateway)
    signs_tokens: bool = False

    def by_flag(self, flag: str) -> Setting | None:
        return next((s for s in self.settings.values() if s.flag == flag), None)

    def reads(self, name: str) -> bool:
        return (
            name in self.settings
            or name in self.other_vars
            or any(name.startswith(p) for p in self.prefixes)
        )


def rust_sources(directory: Path) -> dict[Path, str]:
    """The non-test Rust code under `directory` (unit tests sit at the end of
    each file, from `#[cfg(test)]` on)."""
    out = {}
    for path in sorted(directory.rglob("*.rs")):
        text = path.read_text()
        cut = re.search(r"^#\[cfg\(test\)\]\s*\nmod \w+", text, re.M)
        out[path] = text[: cut.start()] if cut else text
    return out


def balanced(text: str, start: int, open_: str, close: str) -> int:
    """Index just past the bracket closing the one at `start`, skipping strings."""
    depth, i, in_str = 0, start, False
    while i < len(text):
        ch = text[i]
        if in_str:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced brackets")


def skip_attributes(text: str, i: int) -> int:
    """Index past the whitespace, comments and attributes from `i`."""
    while i < len(text):
        if text[i].isspace():
            i += 1
        elif text.startswith("//", i):
            i = text.find("\n", i) % (len(text) + 1)
        elif text.startswith("#[", i):
            i = balanced(text, i + 1, "[", "]")
        else:
            break
    return i


@dataclass
class Field:
    attrs: list[str]
    name: str
    ty: str


@dataclass
class ClapStruct:
    name: str
    path: Path
    parser: bool
    fields: list[Field]


def clap_structs(files: dict[Path, str]) -> list[ClapStruct]:
    found = []
    for path, text in files.items():
        for m in re.finditer(r"#\[derive\(([^)]*)\)\]", text):
            derives = m.group(1)
            if "clap::Parser" not in derives and "clap::Args" not in derives:
                continue
            s = re.compile(r"pub struct (\w+)\s*\{").match(text, skip_attributes(text, m.end()))
            if not s:
                continue
            body_start = s.end() - 1
            body = text[body_start + 1 : balanced(text, body_start, "{", "}") - 1]
            found.append(ClapStruct(s.group(1), path, "clap::Parser" in derives, parse_fields(body)))
    return found


def parse_fields(body: str) -> list[Field]:
    fields, attrs, i = [], [], 0
    while i < len(body):
        if body.startswith("//", i):
            i = body.index("\n", i) + 1 if "\n" in body[i:] else len(body)
        elif body.startswith("#[", i):
            end = balanced(body, i + 1, "[", "]")
            attrs.append(body[i + 2 : end - 1])
            i = end
        elif body[i].isspace():
            i += 1
        else:
            m = re.compile(r"(?:pub(?:\([^)]*\))?\s+)?(\w+)\s*:\s*").match(body, i)
            if not m:
                raise ValueError(f"cannot read a field at {body[i:i + 40]!r}")
            j, depth = m.end(), 0
            while j < len(body) and not (body[j] == "," and depth == 0):
                depth += {"<": 1, ">": -1}.get(body[j], 0)
                j += 1
            fields.append(Field(attrs, m.group(1), body[m.end() : j].strip()))
            attrs, i = [], j + 1
    return fields


def constants(files: dict[Path, str]) -> dict[str, str]:
    consts = {}
    for text in files.values():
        for m in re.finditer(r'const (\w+): &str = "([^"]*)";', text):
            consts[m.group(1)] = m.group(2)
    return consts


def read_code(service: str) -> Code:
    code = Code(service)
    own = rust_sources(REPO / "services" / service / "src")
    libs = {}
    for lib in sorted((REPO / "libs").iterdir()):
        if (lib / "src").is_dir():
            libs.update(rust_sources(lib / "src"))
    everything = {**own, **libs}
    consts = constants(everything)
    structs = clap_structs(everything)
    roots = [s for s in structs if s.parser and s.path in own]
    if len(roots) != 1:
        raise SystemExit(f"{service}: expected one clap::Parser struct, found {[s.name for s in roots]}")

    reached: list[ClapStruct] = []

    def walk(struct: ClapStruct) -> None:
        reached.append(struct)
        for f in struct.fields:
            joined = " ".join(f.attrs)
            if "flatten" in joined:
                name = re.sub(r".*::", "", f.ty)
                candidates = [s for s in structs if s.name == name and (s.path in own or s.path in libs)]
                if len(candidates) != 1:
                    raise SystemExit(f"{service}: cannot tell which struct {name} is ({len(candidates)} found)")
                walk(candidates[0])
            elif "subcommand" in joined:
                continue
            else:
                arg = next((a for a in f.attrs if a.startswith("arg(")), None)
                if arg is None:
                    continue
                env = re.search(r'\benv\s*=\s*(?:"([^"]+)"|(\w+))', arg)
                if not env:
                    continue
                name = env.group(1) or consts.get(env.group(2))
                if not name:
                    raise SystemExit(f"{service}: cannot resolve env = {env.group(2)}")
                flag = re.search(r'\blong\s*=\s*"([^"]+)"', arg)
                default = re.search(r'\bdefault_value(?:_t)?\s*=\s*(?:"([^"]*)"|([^,)]+))', arg)
                optional = f.ty.startswith(("Option<", "bool", "Vec<"))
                value = None
                if default:
                    # a literal, or a `const NAME: &str` (DEV_KEY_ID, DEFAULT_ISSUER…)
                    value = default.group(1) if default.group(1) is not None else default.group(2).strip()
                    value = consts.get(value, value) if default.group(1) is None else value
                code.settings[name] = Setting(
                    env=name,
                    flag=flag.group(1) if flag else None,
                    required=not optional and default is None,
                    default=value,
                    ty=f.ty,
                )

    walk(roots[0])

    # outside clap: the telemetry init reads RUST_LOG, LOG_FORMAT and the
    # OpenTelemetry SDK's standard OTEL_* variables
    main = own.get(REPO / "services" / service / "src" / "main.rs", "")
    if "dispatch311_telemetry::init(" in main:
        for path, text in libs.items():
            if "libs/telemetry/" in path.as_posix():
                code.other_vars.update(re.findall(r'(?:std::env::var|\benv)\("([A-Z][A-Z0-9_]+)"\)', text))
        code.prefixes.add("OTEL_")
    # the photo store's S3 client is configured by the standard AWS_* variables
    if any("AmazonS3Builder::from_env" in everything[s.path] for s in reached):
        code.prefixes.add("AWS_")

    for name, setting in code.settings.items():
        m = re.fullmatch(r"DISPATCH311_([A-Z]+)_URL", name)
        if m and m.group(1).lower() in SERVICES:
            code.calls[name] = m.group(1).lower()

    # what the settings' own checks say: "X needs Y", "X must be an https:// URL"
    own_text = "\n".join(own.values())
    for setting, needed in re.findall(r'"(DISPATCH311_[A-Z0-9_]+) needs (DISPATCH311_[A-Z0-9_]+)\b', own_text):
        code.needs.setdefault(setting, set()).add(needed)
    # "X needs the development signing key": the signer's key file
    signing_key = code.by_flag("auth-signing-key")
    for setting in re.findall(r'"(DISPATCH311_[A-Z0-9_]+) needs the development signing key', own_text):
        if signing_key:
            code.needs.setdefault(setting, set()).add(signing_key.env)
    code.https_only.update(re.findall(r'"(DISPATCH311_[A-Z0-9_]+) must be an https:// URL', own_text))
    # a token signer built from the settings at every start, not under a
    # condition (`let signer = args.signer.signer()`: the Open311 gateway's; the
    # console's is `if args.dev_sign_in { … }`): its key file is required
    if signing_key and re.search(r"\blet\s+\w+\s*=\s*args\s*\.\s*signer\s*\.\s*signer\(\)", own_text):
        signing_key.required = True
        code.signs_tokens = True
    for name in set(code.needs) | {n for ns in code.needs.values() for n in ns} | code.https_only:
        if name not in code.settings:
            raise SystemExit(f"{service}: the code's errors name {name}, which is none of its settings")

    if service in HTTP_SERVERS:
        code.kind = "http"
        # served by axum, directly or through libs/web's `serve`
        if "axum::serve(" not in own_text and "dispatch311_web::serve(" not in own_text:
            raise SystemExit(f"{service}: serves no HTTP (axum::serve or dispatch311_web::serve) in its sources")
        code.health_paths.update(re.findall(r'\.route\(\s*"(/[^"]*health[^"]*)"\s*,\s*get\(', own_text))
        if not code.health_paths:
            raise SystemExit(f"{service}: no GET health route (.route(\"/healthz\", get(...))) in its sources")
        return code

    app = own[REPO / "services" / service / "src" / "app.rs"]
    for api in re.findall(r"<(\w+)Server<\w+> as NamedService>::NAME", app):
        code.served.append(proto_service(api))
    if not code.served:
        raise SystemExit(f"{service}: app.rs names no gRPC service for health")
    server = libs[REPO / "libs" / "grpc" / "src" / "server.rs"]
    code.health_names = set(code.served)
    # the whole server ("") is reported SERVING beside the APIs
    if re.search(r'chain\(\[""\]\)\s*\{\s*health\s*\.set_service_status\(name,\s*ServingStatus::Serving\)', server):
        code.health_names.add("")
    return code


def proto_service(rust_name: str) -> str:
    """`IntakeService` -> `dispatch311.intake.v1.IntakeService`, from proto/."""
    for proto in sorted((REPO / "proto").rglob("*.proto")):
        text = proto.read_text()
        if re.search(rf"^service {rust_name}\s*\{{", text, re.M):
            package = re.search(r"^package ([\w.]+);", text, re.M)
            return f"{package.group(1)}.{rust_name}"
    raise SystemExit(f"no proto declares service {rust_name}")


def drain_timeout() -> int:
    text = (REPO / "libs" / "grpc" / "src" / "server.rs").read_text()
    m = re.search(r"DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs\((\d+)\)", text)
    if not m:
        raise SystemExit("libs/grpc/src/server.rs: DEFAULT_DRAIN_TIMEOUT not found")
    return int(m.group(1))


# ----------------------------------------------------------- the manifests


class Problems(list):
    def add(self, where: str, what: str) -> None:
        self.append(f"{where}: {what}")


def port_of(address: str) -> int | None:
    m = re.fullmatch(r"(?:\[[^\]]*\]|[^:]+):(\d+)", address or "")
    return int(m.group(1)) if m else None


def matches(selector: dict, labels: dict) -> bool:
    wanted = (selector or {}).get("matchLabels", {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def check_overlay(overlay: str, docs: list[dict], codes: dict[str, Code], drain: int,
                  readme: str, problems: Problems) -> None:
    by_kind: dict[str, dict[str, dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d

    for name in by_kind.get("Secret", {}):
        problems.add(f"{overlay}/Secret {name}", "a Secret with values is in the manifests; reference it, create it apart")
    for name, cm in by_kind.get("ConfigMap", {}).items():
        size = sum(len(v.encode()) for v in (cm.get("data") or {}).values())
        size += sum(len(v) * 3 // 4 for v in (cm.get("binaryData") or {}).values())
        if size > CONFIGMAP_LIMIT:
            problems.add(f"{overlay}/ConfigMap {name}", f"{size} bytes: over the API server's 1 MiB")

    deployments = by_kind.get("Deployment", {})
    configmaps = by_kind.get("ConfigMap", {})

    def resolved(e: dict) -> str | None:
        """An env entry's value: literal, or from a ConfigMap in the manifests
        (None for Secrets and what is not there)."""
        if "value" in e:
            return e["value"]
        ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
        if ref:
            return ((configmaps.get(ref["name"]) or {}).get("data") or {}).get(ref["key"])
        return None

    tls_on = {}
    for svc in PROCESSES:
        code = codes[svc]
        where = f"{overlay}/{svc}"
        deployment = deployments.get(f"dispatch311-{svc}")
        if not deployment:
            problems.add(where, f"no Deployment dispatch311-{svc}")
            continue
        pod = deployment["spec"]["template"]["spec"]
        containers = pod.get("containers", [])
        if len(containers) != 1 or containers[0].get("name") != svc:
            problems.add(where, f"expected one container named {svc}, found {[c.get('name') for c in containers]}")
            continue
        c = containers[0]
        image = c.get("image", "")
        if not re.fullmatch(rf"(?:.+/)?dispatch311-{svc}(?::[\w.-]+|@sha256:[0-9a-f]{{64}})", image):
            problems.add(where, f"image {image!r} is not dispatch311-{svc} with a tag or digest")

        env = {}
        for e in c.get("env", []):
            if e["name"] in env:
                problems.add(where, f"{e['name']} set twice")
            env[e["name"]] = e
        values = {n: e.get("value") for n, e in env.items()}
        referenced = set()
        for e in env.values():
            referenced.update(re.findall(r"\$\((\w+)\)", e.get("value") or ""))
        for name, e in env.items():
            if code.reads(name):
                continue
            if name in referenced and "fieldRef" in (e.get("valueFrom") or {}):
                continue  # a helper for another variable's $(NAME)
            problems.add(where, f"sets {name}, which dispatch311-{svc} does not read")
        for name, setting in code.settings.items():
            if setting.required and name not in env:
                problems.add(where, f"does not set {name}, which dispatch311-{svc} requires")
        for name, needed in sorted(code.needs.items()):
            # set, and for a switch, on
            if name in env and (code.settings[name].ty != "bool" or resolved(env[name]) == "true"):
                for other in sorted(needed - set(env)):
                    problems.add(where, f"sets {name} but not {other}, which the code says it needs")
        for name, e in env.items():
            setting = code.settings.get(name)
            value = resolved(e)
            if setting and setting.ty == "bool" and value is not None and value not in ("true", "false"):
                problems.add(where, f"{name}={value!r}: the code takes true or false")
            if name in code.https_only and value is not None and not value.startswith(
                    ("https://", "http://127.0.0.1", "http://localhost", "http://[::1]")):
                problems.add(where, f"{name}={value!r}: the code takes an https:// URL (http:// only on loopback)")
        if c.get("envFrom"):
            problems.add(where, "envFrom hides which variables are set: list them under env")

        # values from ConfigMaps in the manifests: the key must be there
        for name, e in env.items():
            ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
            if ref:
                cm = by_kind.get("ConfigMap", {}).get(ref["name"])
                if cm is None:
                    problems.add(where, f"{name} reads ConfigMap {ref['name']}, which is not in the manifests")
                elif ref["key"] not in (cm.get("data") or {}) and not ref.get("optional"):
                    problems.add(where, f"{name} reads key {ref['key']} that ConfigMap {ref['name']} lacks")

        # ports and listen addresses: a service's API is `grpc`, a web server's `http`
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        main = "grpc" if code.kind == "grpc" else "http"
        listeners = [("listen", main), ("metrics-listen", "metrics")]
        if code.kind == "grpc":
            listeners.insert(1, ("health-listen", "health"))
        for _, wanted in listeners:
            if wanted not in ports:
                problems.add(where, f"no container port named {wanted}")
        for flag, port_name in listeners:
            setting = code.by_flag(flag)
            if setting is None:
                problems.add(where, f"the code has no --{flag} setting any more")
                continue
            address = values.get(setting.env) or (setting.default if setting.env not in env else None)
            if address is None:
                problems.add(where, f"{setting.env} is not set: nothing would listen on port {port_name}")
                continue
            if port_of(address) != ports.get(port_name):
                problems.add(where, f"{setting.env}={address} but container port {port_name} is {ports.get(port_name)}")
            if address.startswith(("127.", "localhost", "[::1]")):
                problems.add(where, f"{setting.env}={address} is loopback: unreachable from the Service and probes")

        # probes: a service's on the plaintext health port, asking for a name the
        # server registers; a web server's GET of its health route on its HTTP port
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            spec = c.get(probe)
            if not spec:
                problems.add(where, f"no {probe}")
                continue
            if code.kind == "http":
                http = spec.get("httpGet")
                if not http:
                    problems.add(where, f"{probe} is not an HTTP GET probe (dispatch311-{svc} serves no gRPC health)")
                    continue
                if http.get("port") not in ("http", ports.get("http")):
                    problems.add(where, f"{probe} probes port {http.get('port')}, not the HTTP port {ports.get('http')}")
                if http.get("path") not in code.health_paths:
                    problems.add(where, f"{probe} asks for {http.get('path')!r}; the health route is {sorted(code.health_paths)}")
                if http.get("scheme", "HTTP") != "HTTP":
                    problems.add(where, f"{probe} uses {http.get('scheme')}: dispatch311-{svc} serves plain HTTP")
                continue
            grpc = spec.get("grpc")
            if not grpc:
                problems.add(where, f"{probe} is not a gRPC probe")
                continue
            if grpc.get("port") != ports.get("health"):
                problems.add(where, f"{probe} probes port {grpc.get('port')}, not the health port {ports.get('health')}")
            name = grpc.get("service", "")
            if name not in code.health_names:
                problems.add(where, f"{probe} asks for {name!r}; health registers {sorted(code.health_names)}")
        readiness = (c.get("readinessProbe") or {}).get("grpc") or {}
        if code.kind == "grpc" and readiness and readiness.get("service") not in code.served:
            problems.add(where, f"readinessProbe should ask for the API itself ({code.served})")
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true" and annotations.get("prometheus.io/port") != str(ports.get("metrics")):
            problems.add(where, f"prometheus.io/port {annotations.get('prometheus.io/port')} is not the metrics port")

        # files the settings name must be in a mounted volume that holds them
        mounts = c.get("volumeMounts", [])
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for name, e in env.items():
            value = e.get("value") or ""
            if not value.startswith("/") or name not in code.settings:
                continue
            mount = max((m for m in mounts if value == m["mountPath"] or value.startswith(m["mountPath"].rstrip("/") + "/")),
                        key=lambda m: len(m["mountPath"]), default=None)
            if mount is None:
                problems.add(where, f"{name}={value} is in no mounted volume (the root filesystem is read-only)")
                continue
            volume = volumes.get(mount["name"], {})
            if mount.get("subPath") and ("secret" in volume or "configMap" in volume):
                problems.add(where, f"{name}={value}: volume {mount['name']} is mounted with subPath, which never sees the Secret's or ConfigMap's updates")
            inside = value[len(mount["mountPath"].rstrip("/")) + 1 :]
            if not inside:  # a directory setting: must be writable for the photo store
                if name == "DISPATCH311_PHOTO_DIR" and (mount.get("readOnly") or "secret" in volume or "configMap" in volume):
                    problems.add(where, f"{name}={value} is not a writable volume")
                continue
            source = volume.get("secret") or volume.get("configMap") or {}
            items = source.get("items")
            if items is not None and inside not in [i["path"] for i in items]:
                problems.add(where, f"{name}={value}: volume {mount['name']} has no item {inside}")
            if "configMap" in volume:
                cm = by_kind.get("ConfigMap", {}).get(volume["configMap"]["name"])
                key = next((i["key"] for i in items or [] if i["path"] == inside), inside)
                if cm is None or key not in (cm.get("data") or {}):
                    problems.add(where, f"{name}={value}: ConfigMap {volume['configMap']['name']} has no key {key}")
        if code.by_flag("photo-dir") and not any(n in env for n in ("DISPATCH311_PHOTO_DIR", "DISPATCH311_PHOTO_STORE")):
            problems.add(where, "neither DISPATCH311_PHOTO_STORE nor DISPATCH311_PHOTO_DIR: the default directory is on the read-only root")

        tls_vars = [code.by_flag(f) for f in ("tls-cert", "tls-key", "tls-ca")]
        set_tls = [s.env for s in tls_vars if s and s.env in env]
        if set_tls and len(set_tls) != 3:
            problems.add(where, f"mutual TLS needs all three of the TLS files, only {set_tls} set")
        tls_on[svc] = len(set_tls) == 3

        # the pod's rules
        security = pod.get("securityContext", {})
        container_security = c.get("securityContext", {})
        if not (security.get("runAsNonRoot") or container_security.get("runAsNonRoot")):
            problems.add(where, "runAsNonRoot is not set")
        seccomp = (container_security.get("seccompProfile") or security.get("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            problems.add(where, f"seccomp profile is {seccomp}, not RuntimeDefault")
        if container_security.get("allowPrivilegeEscalation") is not False:
            problems.add(where, "allowPrivilegeEscalation is not false")
        if container_security.get("readOnlyRootFilesystem") is not True:
            problems.add(where, "readOnlyRootFilesystem is not true")
        if "ALL" not in ((container_security.get("capabilities") or {}).get("drop") or []):
            problems.add(where, "capabilities are not dropped (drop: [ALL])")
        resources = c.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(kind) or {}):
                    problems.add(where, f"no {resource} {kind[:-1]}")
        if pod.get("automountServiceAccountToken") is not False:
            problems.add(where, "automountServiceAccountToken is not false (the services never call the API)")
        if pod.get("enableServiceLinks") is not False:
            problems.add(where, "enableServiceLinks is not false: service links put DISPATCH311_* variables in the environment")
        pause = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if grace <= drain + pause:
            problems.add(where, f"terminationGracePeriodSeconds {grace} is not longer than the drain ({drain} s) plus preStop ({pause} s)")
        rolling = (deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        if rolling.get("maxUnavailable") not in (0, "0", "0%"):
            problems.add(where, "rolling updates may take a pod before its successor is ready (maxUnavailable is not 0)")

        # the Service: selects these pods, targets ports that exist
        service = by_kind.get("Service", {}).get(f"dispatch311-{svc}")
        if not service:
            problems.add(where, f"no Service dispatch311-{svc}")
        else:
            pod_labels = deployment["spec"]["template"]["metadata"].get("labels", {})
            selector = service["spec"].get("selector", {})
            if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
                problems.add(where, f"Service selector {selector} does not select the pods ({pod_labels})")
            for p in service["spec"].get("ports", []):
                target = p.get("targetPort", p["port"])
                if target not in ports and target not in ports.values():
                    problems.add(where, f"Service port {p.get('name')} targets {target}, which the container lacks")
            if not any(p.get("targetPort") in (main, ports.get(main)) for p in service["spec"].get("ports", [])):
                problems.add(where, f"the Service does not expose the {'gRPC' if main == 'grpc' else 'HTTP'} port")

        # the console's sign-in: one way at least (else it refuses to start);
        # in production the identity provider over secure cookies, never the
        # development sign-in
        dev_sign_in, issuer = code.by_flag("dev-sign-in"), code.by_flag("oidc-issuer")
        if dev_sign_in and issuer:
            dev_on = resolved(env[dev_sign_in.env]) == "true" if dev_sign_in.env in env else dev_sign_in.default == "true"
            if not dev_on and issuer.env not in env:
                problems.add(where, f"neither {issuer.env} nor {dev_sign_in.env}=true: nobody could sign in, the console refuses to start")
            if overlay == "production":
                if dev_on:
                    problems.add(where, f"{dev_sign_in.env} is on in production: anyone could sign in as anyone")
                if issuer.env not in env:
                    problems.add(where, f"production signs in through the identity provider: {issuer.env} is not set")
        secure = code.by_flag("secure-cookies")
        if secure and overlay == "production":
            value = resolved(env[secure.env]) if secure.env in env else secure.default
            if value != "true":
                problems.add(where, f"{secure.env}={value}: production sends session cookies over HTTPS only")
        signing_key = code.by_flag("auth-signing-key")
        if dev_sign_in and signing_key and overlay == "production" and signing_key.env in env:
            problems.add(where, f"{signing_key.env} is set in production: no development signing key belongs there")
        # a process signing tokens with its own key: in production under its
        # own id, never the default (the development key's)
        key_id = code.by_flag("auth-key-id")
        if code.signs_tokens and key_id and overlay == "production":
            value = resolved(env[key_id.env]) if key_id.env in env else key_id.default
            if value is None or value == key_id.default:
                unset = " (unset: the default)" if key_id.env not in env else ""
                problems.add(where, f"{key_id.env}={value}{unset}: production signs with a key of its own, not the development key's id ({key_id.default})")

    # who calls whom: URLs, schemes, policies
    for svc in PROCESSES:
        code = codes[svc]
        deployment = deployments.get(f"dispatch311-{svc}")
        if not deployment:
            continue
        c = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        for var, callee in code.calls.items():
            where = f"{overlay}/{svc} -> {callee}"
            url = env.get(var)
            if url is None:
                problems.add(where, f"{var} is not set: the default ({code.settings[var].default}) is not in the cluster")
                continue
            m = re.fullmatch(r"(https?)://([^:/]+):(\d+)/?", url)
            service = by_kind.get("Service", {}).get(f"dispatch311-{callee}")
            callee_dep = deployments.get(f"dispatch311-{callee}")
            if not m or not service or not callee_dep:
                problems.add(where, f"{var}={url} is not scheme://service:port of a Service in the manifests")
                continue
            scheme, host, port = m.group(1), m.group(2), int(m.group(3))
            namespace = service["metadata"].get("namespace")
            names = {service["metadata"]["name"]}
            if namespace:
                names |= {f"{service['metadata']['name']}.{namespace}{suffix}" for suffix in ("", ".svc", ".svc.cluster.local")}
            if host not in names:
                problems.add(where, f"{var}={url}: {host} is not the Service of {callee} ({sorted(names)})")
            callee_ports = {p.get("name"): p["containerPort"] for p in callee_dep["spec"]["template"]["spec"]["containers"][0].get("ports", [])}
            matching = [p for p in service["spec"]["ports"] if p["port"] == port]
            if not matching or matching[0].get("targetPort") not in ("grpc", callee_ports.get("grpc")):
                problems.add(where, f"{var}={url}: port {port} of the Service is not {callee}'s gRPC port")
            wanted = "https" if tls_on.get(svc) else "http"
            if scheme != wanted:
                problems.add(where, f"{var}={url}: must be {wanted}:// with mutual TLS {'on' if tls_on.get(svc) else 'off'} (the client refuses otherwise)")
            if tls_on.get(svc) != tls_on.get(callee):
                problems.add(where, "mutual TLS is on at one end only")

    policies = by_kind.get("NetworkPolicy", {})
    pod_labels = {svc: deployments[f"dispatch311-{svc}"]["spec"]["template"]["metadata"]["labels"]
                  for svc in PROCESSES if f"dispatch311-{svc}" in deployments}
    grpc_port = {svc: next((p["containerPort"] for p in deployments[f"dispatch311-{svc}"]["spec"]["template"]["spec"]["containers"][0].get("ports", []) if p.get("name") == "grpc"), None)
                 for svc in pod_labels}
    edges = {(caller, callee) for caller in PROCESSES for callee in codes[caller].calls.values()}
    for svc, labels in pod_labels.items():
        where = f"{overlay}/{svc} NetworkPolicy"
        policy = policies.get(f"dispatch311-{svc}")
        if not policy:
            problems.add(where, "missing")
            continue
        spec = policy["spec"]
        if not matches(spec.get("podSelector"), labels):
            problems.add(where, "its podSelector does not select the pods")
        if set(spec.get("policyTypes", [])) != {"Ingress", "Egress"}:
            problems.add(where, "must isolate both Ingress and Egress")
        container = deployments[f"dispatch311-{svc}"]["spec"]["template"]["spec"]["containers"][0]
        names = {p.get("name") for p in container.get("ports", [])}
        allowed_from = set()
        for rule in spec.get("ingress", []):
            for p in rule.get("ports", []):
                if isinstance(p.get("port"), str) and p["port"] not in names:
                    problems.add(where, f"lets in port {p['port']}, which the container does not name")
            for peer in rule.get("from", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    for other, other_labels in pod_labels.items():
                        if matches(peer["podSelector"], other_labels):
                            allowed_from.add(other)
                            if not any(p.get("port") in ("grpc", grpc_port[svc]) for p in rule.get("ports", [])):
                                problems.add(where, f"lets {other} in, but not on the gRPC port")
        for caller in sorted(allowed_from - {c for c, cc in edges if cc == svc}):
            problems.add(where, f"lets {caller} in, but {caller} makes no call to {svc} in the code")
        for caller in sorted({c for c, cc in edges if cc == svc} - allowed_from):
            problems.add(where, f"does not let {caller} in, yet {caller} calls {svc} ({[v for v, s in codes[caller].calls.items() if s == svc][0]})")
        metrics_port = next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == "metrics"), None)
        if not any(p.get("port") in ("metrics", metrics_port) for r in spec.get("ingress", []) for p in r.get("ports", [])):
            problems.add(where, "does not let Prometheus reach the metrics port")
        main = "grpc" if codes[svc].kind == "grpc" else "http"
        main_port = next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == main), None)
        if not any(p.get("port") in (main, main_port) for r in spec.get("ingress", []) for p in r.get("ports", [])):
            problems.add(where, f"lets nobody reach the {main} port")
        # PostgreSQL and Redis only for a process that reads their URLs
        for port, setting in ((5432, "DATABASE_URL"), (6379, "REDIS_URL")):
            opened = any(p.get("port") == port for r in spec.get("egress", []) for p in r.get("ports", []))
            if opened and not codes[svc].reads(setting):
                problems.add(where, f"lets {svc} out to port {port}, but it reads no {setting}")
        reaches = set()
        for rule in spec.get("egress", []):
            for peer in rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    for other, other_labels in pod_labels.items():
                        if matches(peer["podSelector"], other_labels):
                            if not any(p.get("port") == grpc_port[other] for p in rule.get("ports", [])):
                                problems.add(where, f"lets out to {other}, but not to its gRPC port {grpc_port[other]}")
                            reaches.add(other)
        for callee in sorted({cc for c, cc in edges if c == svc} - reaches):
            problems.add(where, f"does not let {svc} out to {callee}, which it calls")
        for callee in sorted(reaches - {cc for c, cc in edges if c == svc}):
            problems.add(where, f"lets {svc} out to {callee}, which it never calls")

    # autoscalers and budgets
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind.get("HorizontalPodAutoscaler", {}).values()}
    for name, hpa in hpas.items():
        if name not in deployments:
            problems.add(f"{overlay}/HorizontalPodAutoscaler {hpa['metadata']['name']}", f"targets {name}, which is not in the manifests")
        elif "replicas" in deployments[name]["spec"]:
            problems.add(f"{overlay}/{name}", "has spec.replicas and an autoscaler: each apply would reset the autoscaler's count")
    for pdb in by_kind.get("PodDisruptionBudget", {}).values():
        targets = [n for n, d in deployments.items() if matches(pdb["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        where = f"{overlay}/PodDisruptionBudget {pdb['metadata']['name']}"
        if len(targets) != 1:
            problems.add(where, f"selects {len(targets)} Deployments")
            continue
        least = hpas[targets[0]]["spec"].get("minReplicas", 1) if targets[0] in hpas else deployments[targets[0]]["spec"].get("replicas", 1)
        if least < 2:
            problems.add(where, f"guards {targets[0]} that may run one replica: node drains would block")
    if overlay == "production":
        for svc in pod_labels:
            name = f"dispatch311-{svc}"
            if hpas.get(name, {}).get("spec", {}).get("minReplicas", 0) < 2:
                problems.add(f"{overlay}/{svc}", "production needs an autoscaler with minReplicas of at least 2")
            if not any(matches(p["spec"]["selector"], pod_labels[svc]) for p in by_kind.get("PodDisruptionBudget", {}).values()):
                problems.add(f"{overlay}/{svc}", "production needs a PodDisruptionBudget")
            if not tls_on.get(svc):
                problems.add(f"{overlay}/{svc}", "production runs mutual TLS")
            spread = deployments[name]["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
            if not any(t["topologyKey"] == "kubernetes.io/hostname" and t["whenUnsatisfiable"] == "DoNotSchedule" for t in spread):
                problems.add(f"{overlay}/{svc}", "production keeps replicas on distinct nodes (hostname spread, DoNotSchedule)")
            if not any(t["topologyKey"] == "topology.kubernetes.io/zone" for t in spread):
                problems.add(f"{overlay}/{svc}", "production spreads replicas over zones")

    # every Secret the pods need is documented, with its keys
    needed: dict[str, set[str]] = {}
    for d in deployments.values():
        pod = d["spec"]["template"]["spec"]
        for c in pod["containers"]:
            for e in c.get("env", []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    needed.setdefault(ref["name"], set()).add(ref["key"])
        for v in pod.get("volumes", []):
            if "secret" in v:
                needed.setdefault(v["secret"]["secretName"], set()).update(i["key"] for i in v["secret"].get("items", []))
    for secret, keys in sorted(needed.items()):
        generic = re.sub(rf"-({'|'.join(PROCESSES)})-", "-<service>-", secret)
        lines = [l for l in readme.splitlines() if f"`{secret}`" in l or f"`{generic}`" in l]
        if not lines:
            problems.add(f"{overlay}/Secret {secret}", "is not documented in deploy/k8s/README.md")
        for key in sorted(keys - {k for k in keys if any(f"`{k}`" in l for l in lines)}):
            if lines:
                problems.add(f"{overlay}/Secret {secret}", f"key {key} is not documented beside it in deploy/k8s/README.md")


def render(target: str) -> tuple[str, list[dict]]:
    if "=" in target:
        name, path = target.split("=", 1)
        text = Path(path).read_text()
    else:
        name = Path(target).name
        text = subprocess.run(["kubectl", "kustomize", target], check=True, capture_output=True, text=True).stdout
    return name, [d for d in yaml.safe_load_all(text) if d]


def main(argv: list[str]) -> int:
    targets = argv or [str(p) for p in sorted((K8S / "overlays").iterdir()) if p.is_dir()]
    codes = {svc: read_code(svc) for svc in PROCESSES}
    drain = drain_timeout()
    readme = (K8S / "README.md").read_text()
    problems = Problems()
    counts = []
    for target in targets:
        overlay, docs = render(target)
        check_overlay(overlay, docs, codes, drain, readme, problems)
        counts.append(f"{overlay} ({len(docs)} documents)")
    if problems:
        print("the Kubernetes manifests disagree with the code:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    reads = ", ".join(f"{svc} {len(codes[svc].settings)}" for svc in PROCESSES)
    print(f"manifests agree with the code: {', '.join(counts)}; settings read: {reads}; "
          f"calls: {sorted((s, c) for s in PROCESSES for c in codes[s].calls.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
