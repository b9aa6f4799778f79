#!/usr/bin/env python3
"""Static checks of docker/ (no Docker engine needed).

Checks: compose.yaml (parses, images pinned, build context and Dockerfile,
bind-mount sources, named volumes, depends_on), the Dockerfile (base images
pinned, COPY/ADD sources exist and are not excluded by its .dockerignore),
the collector configuration(s) (every component used in a pipeline is
defined and is provided by the pinned collector-contrib release), Tempo and
Loki configs parse, Grafana provisioning (parses, dashboard JSON valid,
every data source uid the dashboard and the trace/log links use is
provisioned), Kubernetes manifests (every document has apiVersion, kind,
metadata.name; images pinned; embedded collector configs), demo scripts
(bash -n). Runs `docker compose config` when a compose-capable docker client
is installed.

Prints each check; exits 1 if any failed, 0 otherwise. Uses PyYAML; when it
is not importable, installs it from PyPI into a temporary directory (never
into the system).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DOCKER = os.path.join(ROOT, "docker")


def load_yaml_module():
    try:
        import yaml  # noqa: PLC0415

        return yaml
    except ImportError:
        pass
    target = tempfile.mkdtemp(prefix="vigil-check-pyyaml-")
    atexit.register(shutil.rmtree, target, ignore_errors=True)
    print(f"PyYAML not importable: installing it into {target} (pip --target, removed at exit)")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", target, "pyyaml"],
        check=True,
        env={**os.environ, "PIP_ROOT_USER_ACTION": "ignore"},
    )
    sys.path.insert(0, target)
    import yaml  # noqa: PLC0415

    return yaml


yaml = load_yaml_module()

# ---------------------------------------------------------------------------
# Components of otel/opentelemetry-collector-contrib:0.136.0 (the image
# pinned in docker/compose.yaml and docker/k8s/sidecar-collector.yaml).
# Source: open-telemetry/opentelemetry-collector-releases,
# distributions/otelcol-contrib/manifest.yaml (builder manifest, component
# modules at v0.136.0; commit 008cde8ca78cc0286ee3f0de92fa95e1641a445a).
# Listed as module names; a component's configuration type is the module name
# without its kind suffix, except where ALIASES says otherwise. When bumping
# the image, update this list from the manifest of the new release.
CONTRIB_MODULES = {
    "extension": """zpagesextension ackextension asapauthextension awsproxy azureauthextension
        basicauthextension bearertokenauthextension cgroupruntimeextension datadogextension
        awscloudwatchmetricstreamsencodingextension awslogsencodingextension
        googlecloudlogentryencodingextension jaegerencodingextension jsonlogencodingextension
        otlpencodingextension skywalkingencodingextension textencodingextension
        zipkinencodingextension googleclientauthextension headerssetterextension
        healthcheckextension httpforwarderextension jaegerremotesampling
        oauth2clientauthextension dockerobserver ecsobserver ecstaskobserver hostobserver
        k8sobserver kafkatopicsobserver oidcauthextension opampextension pprofextension
        sigv4authextension filestorage dbstorage redisstorageextension sumologicextension
        k8sleaderelector""",
    "exporter": """debugexporter nopexporter otlpexporter otlphttpexporter
        alibabacloudlogserviceexporter awscloudwatchlogsexporter awsemfexporter
        awskinesisexporter awsxrayexporter awss3exporter azureblobexporter
        azuredataexplorerexporter azuremonitorexporter bmchelixexporter carbonexporter
        cassandraexporter clickhouseexporter coralogixexporter datadogexporter
        datasetexporter dorisexporter elasticsearchexporter faroexporter fileexporter
        googlecloudexporter googlecloudpubsubexporter googlemanagedprometheusexporter
        honeycombmarkerexporter influxdbexporter kafkaexporter loadbalancingexporter
        logicmonitorexporter logzioexporter mezmoexporter opensearchexporter
        otelarrowexporter prometheusexporter prometheusremotewriteexporter pulsarexporter
        rabbitmqexporter sapmexporter sentryexporter signalfxexporter splunkhecexporter
        stefexporter sumologicexporter syslogexporter tencentcloudlogserviceexporter
        tinybirdexporter zipkinexporter""",
    "processor": """batchprocessor memorylimiterprocessor attributesprocessor
        cumulativetodeltaprocessor coralogixprocessor deltatocumulativeprocessor
        deltatorateprocessor filterprocessor geoipprocessor groupbyattrsprocessor
        groupbytraceprocessor intervalprocessor isolationforestprocessor
        k8sattributesprocessor logdedupprocessor metricsgenerationprocessor
        metricstarttimeprocessor metricstransformprocessor probabilisticsamplerprocessor
        redactionprocessor remotetapprocessor resourcedetectionprocessor resourceprocessor
        schemaprocessor spanprocessor sumologicprocessor tailsamplingprocessor
        transformprocessor""",
    "receiver": """nopreceiver otlpreceiver activedirectorydsreceiver aerospikereceiver
        apachereceiver apachesparkreceiver awscloudwatchreceiver awscontainerinsightreceiver
        awsecscontainermetricsreceiver awsfirehosereceiver awss3receiver awsxrayreceiver
        azureblobreceiver azureeventhubreceiver azuremonitorreceiver bigipreceiver
        carbonreceiver chronyreceiver cloudflarereceiver cloudfoundryreceiver
        collectdreceiver couchdbreceiver datadogreceiver dockerstatsreceiver
        elasticsearchreceiver envoyalsreceiver expvarreceiver faroreceiver filelogreceiver
        filestatsreceiver flinkmetricsreceiver fluentforwardreceiver githubreceiver
        googlecloudmonitoringreceiver googlecloudpubsubreceiver googlecloudspannerreceiver
        haproxyreceiver hostmetricsreceiver httpcheckreceiver influxdbreceiver iisreceiver
        jaegerreceiver jmxreceiver journaldreceiver k8sclusterreceiver k8seventsreceiver
        k8sobjectsreceiver kafkametricsreceiver kafkareceiver kubeletstatsreceiver
        libhoneyreceiver lokireceiver memcachedreceiver mongodbatlasreceiver mongodbreceiver
        mysqlreceiver namedpipereceiver netflowreceiver nginxreceiver nsxtreceiver
        ntpreceiver oracledbreceiver otlpjsonfilereceiver otelarrowreceiver podmanreceiver
        postgresqlreceiver prometheusreceiver prometheusremotewritereceiver purefareceiver
        purefbreceiver pulsarreceiver rabbitmqreceiver receivercreator redisreceiver
        riakreceiver saphanareceiver signalfxreceiver simpleprometheusreceiver
        skywalkingreceiver snowflakereceiver solacereceiver splunkenterprisereceiver
        splunkhecreceiver stefreceiver sqlqueryreceiver sqlserverreceiver sshcheckreceiver
        statsdreceiver syslogreceiver tcpcheckreceiver tcplogreceiver tlscheckreceiver
        udplogreceiver vcenterreceiver wavefrontreceiver snmpreceiver webhookeventreceiver
        windowseventlogreceiver windowsperfcountersreceiver zipkinreceiver
        zookeeperreceiver""",
    "connector": """forwardconnector countconnector datadogconnector exceptionsconnector
        failoverconnector grafanacloudconnector otlpjsonconnector roundrobinconnector
        routingconnector servicegraphconnector spanmetricsconnector sumconnector
        signaltometricsconnector""",
}
# Modules whose registered configuration type is not "module minus suffix".
# Only entries we are sure of; a component missing here fails the check
# (loudly, never silently passes).
ALIASES = {
    "healthcheckextension": "health_check",
    "memorylimiterprocessor": "memory_limiter",
    "filestorage": "file_storage",
    "dbstorage": "db_storage",
    "zpagesextension": "zpages",
    "pprofextension": "pprof",
    "opampextension": "opamp",
    "headerssetterextension": "headers_setter",
    "oauth2clientauthextension": "oauth2client",
    "bearertokenauthextension": "bearertokenauth",
    "basicauthextension": "basicauth",
    "tailsamplingprocessor": "tail_sampling",
    "probabilisticsamplerprocessor": "probabilistic_sampler",
    "receivercreator": "receiver_creator",
    "simpleprometheusreceiver": "prometheus_simple",
    "k8sclusterreceiver": "k8s_cluster",
    "k8seventsreceiver": "k8s_events",
    "splunkhecreceiver": "splunk_hec",
    "splunkhecexporter": "splunk_hec",
    "k8sobserver": "k8s_observer",
    "dockerobserver": "docker_observer",
    "hostobserver": "host_observer",
}


def contrib_types() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for kind, names in CONTRIB_MODULES.items():
        types = set()
        for mod in names.split():
            if mod in ALIASES:
                types.add(ALIASES[mod])
            elif mod.endswith(kind):
                types.add(mod[: -len(kind)])
            else:  # e.g. awsproxy, jaegerremotesampling: the module is the type
                types.add(mod)
        out[kind] = types
    return out


CONTRIB = contrib_types()

# ---------------------------------------------------------------------------
failures: list[str] = []
checked = 0


def ok(msg: str) -> None:
    global checked
    checked += 1
    print(f"ok    {msg}")


def fail(msg: str) -> None:
    global checked
    checked += 1
    failures.append(msg)
    print(f"FAIL  {msg}")


def rel(path: str) -> str:
    return os.path.relpath(path, ROOT)


def load(path: str, multi: bool = False):
    try:
        with open(path, encoding="utf-8") as f:
            data = list(yaml.safe_load_all(f)) if multi else yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        fail(f"{rel(path)}: does not parse: {e}")
        return None
    ok(f"{rel(path)}: parses")
    return data


def image_pinned(where: str, image: str) -> None:
    if not isinstance(image, str) or not image:
        fail(f"{where}: image missing")
        return
    if "@sha256:" in image:
        ok(f"{where}: image {image} pinned by digest")
        return
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag or tag == "latest" or "${" in image:
        fail(f"{where}: image {image!r} is not pinned (needs an explicit tag other than latest)")
    else:
        ok(f"{where}: image {image} pinned")


# ---------------------------------------------------------------------------
def check_dockerfile(path: str, context: str) -> None:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        fail(f"{rel(path)}: unreadable: {e}")
        return
    ignore_path = path + ".dockerignore"
    ignored: list[str] = []
    if os.path.exists(ignore_path):
        with open(ignore_path, encoding="utf-8") as f:
            ignored = [ln.strip().rstrip("/") for ln in f if ln.strip() and not ln.startswith("#")]
    stages: set[str] = set()
    logical = re.sub(r"\\\n", " ", text)
    for line in logical.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        instr = words[0].upper()
        if instr == "FROM":
            args = [w for w in words[1:] if not w.startswith("--")]
            image = args[0]
            if image not in stages:
                image_pinned(f"{rel(path)} FROM", image)
            if len(args) >= 3 and args[1].upper() == "AS":
                stages.add(args[2])
        elif instr in ("COPY", "ADD"):
            args = words[1:]
            if any(a.startswith("--from") for a in args):
                continue
            args = [a for a in args if not a.startswith("--")]
            if args and args[0].startswith("["):
                args = json.loads(" ".join(args))
            for src in args[:-1]:
                full = os.path.join(context, src)
                if not os.path.exists(full):
                    fail(f"{rel(path)}: {instr} source {src} does not exist in the build context {rel(context)}")
                elif any(src.rstrip("/") == ig or src.startswith(ig + "/") for ig in ignored):
                    fail(f"{rel(path)}: {instr} source {src} is excluded by {rel(ignore_path)}")
                else:
                    ok(f"{rel(path)}: {instr} source {src} exists")
    if "HEALTHCHECK" not in text:
        fail(f"{rel(path)}: no HEALTHCHECK")


# ---------------------------------------------------------------------------
def check_collector(where: str, cfg) -> None:
    if not isinstance(cfg, dict):
        fail(f"{where}: collector config is not a mapping")
        return
    service = cfg.get("service") or {}
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        fail(f"{where}: no service.pipelines")
    kinds = {"receivers": "receiver", "processors": "processor", "exporters": "exporter"}
    connectors = set((cfg.get("connectors") or {}).keys())

    def known(kind: str, cid: str) -> None:
        ctype = cid.split("/", 1)[0]
        if ctype in CONTRIB[kind]:
            ok(f"{where}: {kind} {cid}: type {ctype} is in collector-contrib 0.136.0")
        else:
            fail(f"{where}: {kind} {cid}: type {ctype!r} is not a {kind} of collector-contrib 0.136.0")

    for name, pipe in pipelines.items():
        if name.split("/", 1)[0] not in ("traces", "metrics", "logs", "profiles"):
            fail(f"{where}: pipeline {name}: unknown signal")
        for section, kind in kinds.items():
            ids = (pipe or {}).get(section) or []
            if section != "processors" and not ids:
                fail(f"{where}: pipeline {name} has no {section}")
            for cid in ids:
                if cid in connectors and section in ("receivers", "exporters"):
                    known("connector", cid)
                elif cid not in (cfg.get(section) or {}):
                    fail(f"{where}: pipeline {name} uses {section[:-1]} {cid}, which is not defined")
                else:
                    ok(f"{where}: pipeline {name}: {section[:-1]} {cid} defined")
                    known(kind, cid)
    for ext in service.get("extensions") or []:
        if ext not in (cfg.get("extensions") or {}):
            fail(f"{where}: service uses extension {ext}, which is not defined")
        else:
            known("extension", ext)


# ---------------------------------------------------------------------------
def check_compose() -> tuple[str, str] | None:
    path = os.path.join(DOCKER, "compose.yaml")
    compose = load(path)
    if not isinstance(compose, dict):
        return None
    base = os.path.dirname(path)
    services = compose.get("services") or {}
    volumes = set((compose.get("volumes") or {}).keys())
    build_info = None
    for name, svc in services.items():
        where = f"compose service {name}"
        if "build" in svc:
            b = svc["build"]
            ctx = os.path.normpath(os.path.join(base, b if isinstance(b, str) else b.get("context", ".")))
            dockerfile = os.path.join(ctx, "Dockerfile" if isinstance(b, str) else b.get("dockerfile", "Dockerfile"))
            if not os.path.isdir(ctx):
                fail(f"{where}: build context {rel(ctx)} does not exist")
            elif not os.path.isfile(dockerfile):
                fail(f"{where}: Dockerfile {rel(dockerfile)} does not exist")
            else:
                ok(f"{where}: build context {rel(ctx) or '.'} and {rel(dockerfile)} exist")
                build_info = (dockerfile, ctx)
            if "image" in svc:
                image_pinned(where, svc["image"])
        else:
            image_pinned(where, svc.get("image"))
        for v in svc.get("volumes") or []:
            if isinstance(v, str):
                parts = v.split(":")
                src = parts[0] if len(parts) > 1 else None
                vtype = None if src is None else ("bind" if src.startswith((".", "/", "~")) else "volume")
            else:
                src, vtype = v.get("source"), v.get("type")
            if src is None or vtype not in ("bind", "volume"):
                continue
            if vtype == "volume":
                if src in volumes:
                    ok(f"{where}: named volume {src} declared")
                else:
                    fail(f"{where}: named volume {src} not declared under top-level volumes")
            elif src.startswith("/"):
                ok(f"{where}: host path {src} (not in the repository; not checked)")
            else:
                full = os.path.normpath(os.path.join(base, src))
                if os.path.exists(full):
                    ok(f"{where}: mount source {rel(full)} exists")
                else:
                    fail(f"{where}: mount source {src} ({rel(full)}) does not exist")
        deps = svc.get("depends_on") or []
        for dep in deps if isinstance(deps, list) else deps.keys():
            if dep in services:
                ok(f"{where}: depends_on {dep} exists")
            else:
                fail(f"{where}: depends_on {dep}, which is not a service")
    return build_info


def check_grafana() -> None:
    prov = os.path.join(DOCKER, "grafana", "provisioning")
    uids: set[str] = set()
    link_uids: list[tuple[str, str]] = []
    ds_dir = os.path.join(prov, "datasources")
    for fn in sorted(os.listdir(ds_dir)) if os.path.isdir(ds_dir) else []:
        data = load(os.path.join(ds_dir, fn))
        for ds in (data or {}).get("datasources") or []:
            if not ds.get("uid"):
                fail(f"grafana data source {ds.get('name')}: no fixed uid")
                continue
            uids.add(ds["uid"])
            jd = ds.get("jsonData") or {}
            t2l = jd.get("tracesToLogsV2") or {}
            if t2l:
                link_uids.append((f"data source {ds['uid']} tracesToLogsV2", t2l.get("datasourceUid")))
            for d in jd.get("derivedFields") or []:
                link_uids.append((f"data source {ds['uid']} derived field {d.get('name')}", d.get("datasourceUid")))
    if not uids:
        fail("grafana: no provisioned data sources")
    dash_prov = os.path.join(prov, "dashboards")
    for fn in sorted(os.listdir(dash_prov)) if os.path.isdir(dash_prov) else []:
        load(os.path.join(dash_prov, fn))
    dash_dir = os.path.join(DOCKER, "grafana", "dashboards")
    dashboards = sorted(f for f in os.listdir(dash_dir) if f.endswith(".json")) if os.path.isdir(dash_dir) else []
    if not dashboards:
        fail("grafana: no dashboard JSON")
    for fn in dashboards:
        path = os.path.join(dash_dir, fn)
        try:
            with open(path, encoding="utf-8") as f:
                dash = json.load(f)
            ok(f"{rel(path)}: valid JSON")
        except (OSError, ValueError) as e:
            fail(f"{rel(path)}: invalid JSON: {e}")
            continue

        def walk(node):
            if isinstance(node, dict):
                ds = node.get("datasource")
                if isinstance(ds, dict) and "uid" in ds:
                    yield ds["uid"]
                for v in node.values():
                    yield from walk(v)
            elif isinstance(node, list):
                for v in node:
                    yield from walk(v)

        for uid in sorted(set(walk(dash))):
            link_uids.append((f"{rel(path)}", uid))
    for where, uid in link_uids:
        if uid in uids:
            ok(f"grafana: {where} uses data source uid {uid}, provisioned")
        else:
            fail(f"grafana: {where} uses data source uid {uid!r}, which is not provisioned")


def check_k8s() -> None:
    k8s = os.path.join(DOCKER, "k8s")
    for fn in sorted(os.listdir(k8s)) if os.path.isdir(k8s) else []:
        if not fn.endswith((".yaml", ".yml")):
            continue
        path = os.path.join(k8s, fn)
        docs = load(path, multi=True)
        for i, doc in enumerate(d for d in docs or [] if d is not None):
            where = f"{rel(path)} document {i + 1}"
            name = (doc.get("metadata") or {}).get("name") if isinstance(doc, dict) else None
            if not (isinstance(doc, dict) and doc.get("apiVersion") and doc.get("kind") and name):
                fail(f"{where}: needs apiVersion, kind and metadata.name")
                continue
            ok(f"{where}: {doc['kind']} {name}")
            spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
            for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                image_pinned(f"{where} container {c.get('name')}", c.get("image"))
            if doc["kind"] == "ConfigMap":
                for key, val in (doc.get("data") or {}).items():
                    if key.endswith((".yaml", ".yml")):
                        try:
                            cfg = yaml.safe_load(val)
                        except yaml.YAMLError as e:
                            fail(f"{where}: data {key} does not parse: {e}")
                            continue
                        if isinstance(cfg, dict) and "service" in cfg and "receivers" in cfg:
                            check_collector(f"{where} data {key}", cfg)
        check_vigil_daemonset(path, [d for d in docs or [] if isinstance(d, dict)])


# Downward-API variables vigil reads (exporter/src/otel/resource.rs and the
# Kubernetes metadata lookup) and the field each must come from.
DOWNWARD_API = {
    "K8S_NODE_NAME": "spec.nodeName",
    "K8S_POD_NAME": "metadata.name",
    "K8S_POD_NAMESPACE": "metadata.namespace",
    "K8S_POD_UID": "metadata.uid",
}


def check_vigil_daemonset(path: str, docs: list) -> None:
    """The vigil DaemonSet sets the downward-API variables, and when it
    enables the Kubernetes lookup, its service account may get, list and
    watch pods (and nothing the lookup does not need)."""
    for doc in docs:
        if doc.get("kind") != "DaemonSet":
            continue
        where = f"{rel(path)} DaemonSet {doc['metadata']['name']}"
        spec = doc["spec"]["template"]["spec"]
        for c in spec.get("containers") or []:
            env = {e.get("name"): e for e in c.get("env") or []}
            if "K8S_NODE_NAME" not in env:
                continue  # not a vigil container
            for var, field in DOWNWARD_API.items():
                got = ((env.get(var) or {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
                if got == field:
                    ok(f"{where}: {var} from {field}")
                else:
                    fail(f"{where}: {var} must come from fieldRef {field} (got {got!r})")
            lookup = str((env.get("VIGIL_METADATA__KUBERNETES__ENABLED") or {}).get("value", "")).lower() == "true"
            if not lookup:
                continue
            account = spec.get("serviceAccountName")
            ns = doc["metadata"].get("namespace")
            roles = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ClusterRole"}
            bound = [
                d for d in docs
                if d.get("kind") == "ClusterRoleBinding"
                and any(s.get("kind") == "ServiceAccount" and s.get("name") == account and s.get("namespace") == ns
                        for s in d.get("subjects") or [])
            ]
            grants = set()
            for b in bound:
                role = roles.get((b.get("roleRef") or {}).get("name"))
                for rule in (role or {}).get("rules") or []:
                    if "" in (rule.get("apiGroups") or []):
                        for res in rule.get("resources") or []:
                            for verb in rule.get("verbs") or []:
                                grants.add((res, verb))
            need = {("pods", v) for v in ("get", "list", "watch")}
            if need <= grants:
                ok(f"{where}: service account {account} may get/list/watch pods (Kubernetes lookup)")
            else:
                fail(f"{where}: the Kubernetes lookup is enabled but {account} lacks {sorted(need - grants)}")
            extra = {g for g in grants if g[0] != "pods" or g[1] not in ("get", "list", "watch")}
            if extra:
                fail(f"{where}: {account} is granted more than the lookup needs: {sorted(extra)}")


def check_demo() -> None:
    demo = os.path.join(DOCKER, "demo")
    scripts = sorted(f for f in os.listdir(demo) if f.endswith(".sh")) if os.path.isdir(demo) else []
    if not scripts:
        fail("docker/demo: no scripts")
    for fn in scripts:
        path = os.path.join(demo, fn)
        r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
        if r.returncode == 0:
            ok(f"{rel(path)}: bash -n")
        else:
            fail(f"{rel(path)}: bash -n: {r.stderr.strip()}")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        # Loopback only: no IPv4 address other than 127.0.0.1 may appear.
        others = {a for a in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text) if a != "127.0.0.1"}
        if others:
            fail(f"{rel(path)}: addresses other than 127.0.0.1: {sorted(others)}")


def check_compose_cli() -> None:
    docker = shutil.which("docker")
    if not docker:
        print("skip  docker compose config: no docker client")
        return
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        print("skip  docker compose config: this docker client has no compose plugin")
        return
    r = subprocess.run(
        [docker, "compose", "-f", os.path.join(DOCKER, "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    if r.returncode == 0:
        ok("docker compose config")
    elif re.search(r"Cannot connect to the Docker daemon|docker daemon|docker.sock", r.stderr, re.I):
        print(f"skip  docker compose config: needs an engine here ({r.stderr.strip().splitlines()[-1]})")
    else:
        fail(f"docker compose config: {r.stderr.strip()}")


def main() -> int:
    build = check_compose()
    check_dockerfile(*(build or (os.path.join(DOCKER, "Dockerfile"), ROOT)))
    check_collector("docker/otel-collector.yaml", load(os.path.join(DOCKER, "otel-collector.yaml")))
    for fn in ("tempo.yaml", "loki.yaml"):
        load(os.path.join(DOCKER, fn))
    check_grafana()
    check_k8s()
    check_demo()
    check_compose_cli()
    if failures:
        print(f"\ncheck-docker: {len(failures)} of {checked} checks FAILED:")
        for f in failures:
            print(f"  - {f}")
        return 1
    print(f"\ncheck-docker: all {checked} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
