"""The scheduled-run manifests and the Dockerfile in docker/ agree with the project.

The Kubernetes objects are validated against the API schema of the Kubernetes versions the
manifests target (``kubernetes-validate``, which ships the schemas: no cluster, no network),
in strict mode, so a wrong type, a missing required field, an unknown (misspelt) field or an
API version a target does not serve is caught there. What no schema says is checked by hand:
the schedule, that runs never overlap, that the pod submits jobs/pipeline.py with Delta and
the config's environment, how big the pods are, and that no secret is written into a manifest.
Each check is a function returning its list of problems, so the checks are themselves tested
on broken copies (a check that cannot fail would prove nothing).
"""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import kubernetes_validate
import pyspark
import pytest
import yaml

from anime_recs.config import masked
from anime_recs.spark import DELTA_PACKAGE, DELTA_SQL_CONF

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
MANIFESTS = ("cronjob.yaml", "scheduled-sparkapplication.yaml")
IMAGE_ROOT = "/opt/anime-recs"  # where the Dockerfile copies jobs/ and conf/
# The Kubernetes versions the manifests must apply to: the oldest minor still maintained
# upstream when this was written (December 2026) and the newest whose schema the pinned
# kubernetes-validate ships; a field added or an API removed in between fails one of them.
KUBERNETES_VERSIONS = ("1.35", "1.37")
# Kinds from the Kubeflow Spark operator's CRDs: kubernetes-validate has no schema for them,
# so scheduled_app_problems is all that checks them.
OPERATOR_KINDS = {"ScheduledSparkApplication"}
CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
ENV_VAR = re.compile(r"\$\{(\w+)\}")


def load(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DOCKER / name).read_text()) if d is not None]


def schema_problems(docs: list[dict], version: str) -> list[str]:
    """Where the documents break the Kubernetes ``version`` API schema (strict: unknown
    fields too); a kind that version does not serve is a problem, an operator kind is skipped."""
    problems = []
    for doc in docs:
        if doc.get("kind") in OPERATOR_KINDS:
            continue
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "(top)"
            problems.append(f"{name}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name}: {exc.message}")
    return problems


def valid_cron(expr: str) -> bool:
    """Five standard cron fields (minute hour day month weekday), numbers/ranges/steps/lists."""
    fields = expr.split()
    return len(fields) == 5 and all(CRON_FIELD.match(f) for f in fields)


def submit_confs(args: list[str]) -> dict[str, str]:
    """``--conf k=v`` pairs of a spark-submit argument list, up to the application file."""
    confs = {}
    for flag, value in zip(args, args[1:], strict=False):
        if flag == "--conf" and "=" in value:
            key, val = value.split("=", 1)
            confs[key] = val
        if value.endswith(".py"):
            break
    return confs


def config_env_vars(image_conf: str) -> set[str]:
    """The ``${VARS}`` that the job's config file (inside the image) reads at start."""
    local = REPO / image_conf.removeprefix(f"{IMAGE_ROOT}/")
    if not local.is_file():
        return set()

    def strings(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)
        elif isinstance(node, str):
            yield node

    return {v for s in strings(yaml.safe_load(local.read_text())) for v in ENV_VAR.findall(s)}


def job_args_problems(app: str, job_args: list[str]) -> list[str]:
    problems = []
    if not app.endswith("jobs/pipeline.py"):
        problems.append(f"application is {app!r}, not jobs/pipeline.py")
    elif not (REPO / "jobs" / "pipeline.py").is_file():
        problems.append("jobs/pipeline.py missing from the repository")
    if "--conf" not in job_args[:-1]:
        problems.append("pipeline arguments lack --conf CONFIG")
        return problems
    conf = job_args[job_args.index("--conf") + 1]
    if not conf.startswith(f"{IMAGE_ROOT}/conf/"):
        problems.append(f"pipeline --conf {conf} is not a config inside the image")
    elif not (REPO / conf.removeprefix(f"{IMAGE_ROOT}/")).is_file():
        problems.append(f"pipeline --conf {conf}: no such file in conf/")
    return problems


def cronjob_problems(docs: list[dict]) -> list[str]:
    """Everything wrong with the CronJob manifest (empty list = fine)."""
    cronjobs = [d for d in docs if d.get("kind") == "CronJob"]
    if len(cronjobs) != 1:
        return [f"expected one CronJob, found {len(cronjobs)}"]
    cj = cronjobs[0]
    spec = cj["spec"]
    problems = []
    if not valid_cron(str(spec.get("schedule", ""))):
        problems.append(f"invalid schedule {spec.get('schedule')!r}")
    if spec.get("concurrencyPolicy") != "Forbid":
        problems.append("concurrencyPolicy is not Forbid: scheduled runs could overlap")
    pod = cron_pod(cj)
    if pod.get("restartPolicy") not in ("Never", "OnFailure"):
        problems.append("pod restartPolicy must be Never or OnFailure")
    (container,) = pod["containers"]
    image = container.get("image", "")
    if not image or ":" not in image:
        problems.append("container image missing or without a tag")
    # spark-submit waits for the whole run: a pod without requests can be evicted first, one
    # without a memory limit can starve its node
    resources = container.get("resources", {})
    for kind, key in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
        if key not in resources.get(kind, {}):
            problems.append(f"submitter container lacks resources.{kind}.{key}")
    cmd = [*container.get("command", []), *container.get("args", [])]
    if not cmd or not cmd[0].endswith("spark-submit"):
        problems.append("container does not run spark-submit")
        return problems
    args = cmd[1:]
    flags = dict(zip(args, args[1:], strict=False))
    if not flags.get("--master", "").startswith("k8s://"):
        problems.append("--master is not k8s://...")
    confs = submit_confs(args)
    for key, value in DELTA_SQL_CONF.items():
        if confs.get(key) != value:
            problems.append(f"missing --conf {key}={value}")
    if confs.get("spark.kubernetes.container.image") != image:
        problems.append("spark.kubernetes.container.image differs from the pod image")
    sa = pod.get("serviceAccountName")
    if confs.get("spark.kubernetes.authenticate.driver.serviceAccountName") != sa:
        problems.append("driver service account differs from the submitter's")
    if not any(d.get("kind") == "ServiceAccount" and d["metadata"]["name"] == sa for d in docs):
        problems.append(f"service account {sa!r} not defined")
    apps = [i for i, a in enumerate(args) if a.endswith(".py")]
    if not apps:
        return [*problems, "no application .py in the arguments"]
    app, job_args = args[apps[0]], args[apps[0] + 1 :]
    if not app.startswith("local://"):
        problems.append(f"application {app} is not a local:// path inside the image")
    problems += job_args_problems(app, job_args)
    if "--conf" in job_args[:-1]:
        conf = job_args[job_args.index("--conf") + 1]
        provided = {
            k.removeprefix("spark.kubernetes.driverEnv.")
            for k in confs
            if k.startswith("spark.kubernetes.driverEnv.")
        }
        for var in sorted(config_env_vars(conf) - provided):
            problems.append(f"config variable ${{{var}}} not set via driverEnv")
    # executors resolve the fine-tuned encoder (models:/...) from MLflow themselves
    if "spark.executorEnv.MLFLOW_TRACKING_URI" not in confs:
        problems.append("executors lack MLFLOW_TRACKING_URI (spark.executorEnv)")
    return problems


def scheduled_app_problems(docs: list[dict], service_accounts: set[str]) -> list[str]:
    """Everything wrong with the ScheduledSparkApplication manifest."""
    (app,) = [d for d in docs if d.get("kind") == "ScheduledSparkApplication"]
    spec, problems = app["spec"], []
    if not valid_cron(str(spec.get("schedule", ""))):
        problems.append(f"invalid schedule {spec.get('schedule')!r}")
    if spec.get("concurrencyPolicy") != "Forbid":
        problems.append("concurrencyPolicy is not Forbid: scheduled runs could overlap")
    template = spec["template"]
    if template.get("sparkVersion") != pyspark.__version__:
        problems.append(f"sparkVersion {template.get('sparkVersion')} != {pyspark.__version__}")
    for key, value in DELTA_SQL_CONF.items():
        if template.get("sparkConf", {}).get(key) != value:
            problems.append(f"missing sparkConf {key}={value}")
    if not template.get("image"):
        problems.append("no image")
    main = template.get("mainApplicationFile", "")
    if not main.startswith("local://"):
        problems.append(f"mainApplicationFile {main} is not a local:// path inside the image")
    args = [str(a) for a in template.get("arguments", [])]
    problems += job_args_problems(main, args)
    if template["driver"].get("serviceAccount") not in service_accounts:
        problems.append("driver service account not defined in cronjob.yaml")
    if "--conf" in args[:-1]:
        env = {e["name"] for e in template["driver"].get("env", [])}
        for var in sorted(config_env_vars(args[args.index("--conf") + 1]) - env):
            problems.append(f"config variable ${{{var}}} not in the driver env")
    if "MLFLOW_TRACKING_URI" not in {e["name"] for e in template["executor"].get("env", [])}:
        problems.append("executors lack MLFLOW_TRACKING_URI")
    return problems


def cron_pod(cj: dict) -> dict:
    """The pod spec of a CronJob's jobs."""
    return cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def cronjob_container(docs: list[dict]) -> dict:
    (cj,) = [d for d in docs if d["kind"] == "CronJob"]
    return cron_pod(cj)["containers"][0]


# CronJob spark-submit setting -> where the SparkApplication template sets it
SPARK_POD_SIZES = {
    "spark.driver.cores": ("driver", "cores"),
    "spark.driver.memory": ("driver", "memory"),
    "spark.executor.instances": ("executor", "instances"),
    "spark.executor.cores": ("executor", "cores"),
    "spark.executor.memory": ("executor", "memory"),
}
ENV_CONF_PREFIXES = ("spark.kubernetes.driverEnv.", "spark.executorEnv.")


def pod_size_problems(cron_docs: list[dict], app_docs: list[dict]) -> list[str]:
    """Where the two alternative manifests size the Spark driver and executors differently."""
    confs = submit_confs(cronjob_container(cron_docs)["args"])
    (app,) = [d for d in app_docs if d.get("kind") == "ScheduledSparkApplication"]
    template = app["spec"]["template"]
    problems = []
    for key, (role, field) in SPARK_POD_SIZES.items():
        theirs = template.get(role, {}).get(field)
        if key not in confs:
            problems.append(f"the CronJob sets no --conf {key}")
        elif str(theirs) != confs[key]:
            problems.append(
                f"{key}={confs[key]} but the SparkApplication's {role}.{field}={theirs}"
            )
    return problems


def literal_env(docs: list[dict]) -> dict[str, str]:
    """The environment variables the manifests give literal values: ``env`` entries with a
    ``value`` (pods, the operator's driver and executor) and ``driverEnv``/``executorEnv``
    Spark settings (spark-submit arguments or ``sparkConf`` keys)."""
    found: dict[str, str] = {}

    def from_conf(key: str, value: str) -> None:
        for prefix in ENV_CONF_PREFIXES:
            if key.startswith(prefix):
                found[key.removeprefix(prefix)] = value

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for entry in node.get("env") or []:
                if isinstance(entry, dict) and "value" in entry:
                    found[entry["name"]] = str(entry["value"])
            for key, value in node.items():
                from_conf(str(key), str(value))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and "=" in node:
            from_conf(*node.split("=", 1))

    walk(docs)
    return found


def secret_problems(docs: list[dict]) -> list[str]:
    """Secrets (by the names and values the config masks) written into a manifest: they belong
    in a Secret, read into the environment with ``secretKeyRef``."""
    return [
        f"{name} is written into the manifest: take it from a Secret (secretKeyRef)"
        for name, value in sorted(literal_env(docs).items())
        if masked(value, name) != value
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS)
def test_manifests_follow_the_kubernetes_schema(manifest, version):
    docs = load(manifest)
    assert docs
    assert schema_problems(docs, version) == []


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (
            lambda cj: cj["spec"]["jobTemplate"]["spec"].update(backoffLimit="one"),
            "CronJob/anime-recs-pipeline: spec.jobTemplate.spec.backoffLimit: "
            "'one' is not of type 'integer', 'null'",
        ),
        (
            lambda cj: cj["spec"].update(concurencyPolicy="Forbid"),
            "'concurencyPolicy' was unexpected",
        ),
        (
            lambda cj: cj.update(apiVersion="batch/v1beta1"),
            "Couldn't find schema for kind CronJob with api version batch/v1beta1",
        ),
        (
            lambda cj: cron_pod(cj)["containers"][0].pop("name"),
            "'name' is a required property",
        ),
    ],
)
def test_schema_validation_rejects_broken_manifests(mutate, problem):
    docs = copy.deepcopy(load("cronjob.yaml"))
    (cj,) = [d for d in docs if d["kind"] == "CronJob"]
    mutate(cj)
    for version in KUBERNETES_VERSIONS:
        problems = schema_problems(docs, version)
        assert any(problem in p for p in problems), problems


def test_cronjob_manifest_is_valid():
    docs = load("cronjob.yaml")
    assert cronjob_problems(docs) == []
    args = cronjob_container(docs)["args"]
    assert args[args.index("--deploy-mode") + 1] == "cluster"


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda c, s: s.update(concurrencyPolicy="Allow"), "concurrencyPolicy is not Forbid"),
        (lambda c, s: s.update(schedule="every monday"), "invalid schedule"),
        (
            lambda c, s: c["args"].__setitem__(c["args"].index("--master") + 1, "yarn"),
            "--master is not k8s",
        ),
        (
            lambda c, s: c["args"].__setitem__(
                c["args"].index("local:///opt/anime-recs/jobs/pipeline.py"),
                "local:///opt/anime-recs/jobs/recommend.py",
            ),
            "not jobs/pipeline.py",
        ),
        (
            lambda c, s: c["args"].__setitem__(
                c["args"].index("spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension"),
                "spark.sql.extensions=other",
            ),
            "missing --conf spark.sql.extensions",
        ),
        (lambda c, s: c.update(image="other/image:1"), "differs from the pod image"),
        (
            lambda c, s: c["args"].__setitem__(-1, "/opt/anime-recs/conf/nosuch.yaml"),
            "no such file in conf/",
        ),
        (lambda c, s: c["resources"].pop("limits"), "lacks resources.limits.memory"),
    ],
)
def test_cronjob_checks_catch_broken_manifests(mutate, problem):
    docs = copy.deepcopy(load("cronjob.yaml"))
    (cj,) = [d for d in docs if d["kind"] == "CronJob"]
    mutate(cronjob_container(docs), cj["spec"])
    assert any(problem in p for p in cronjob_problems(docs)), cronjob_problems(docs)


def test_cronjob_provides_every_env_var_of_the_cluster_config():
    docs = copy.deepcopy(load("cronjob.yaml"))
    args = cronjob_container(docs)["args"]
    assert config_env_vars(f"{IMAGE_ROOT}/conf/cluster.yaml") >= {"DATA_BUCKET"}
    drop = next(i for i, a in enumerate(args) if a.startswith("spark.kubernetes.driverEnv.DATA"))
    del args[drop - 1 : drop + 1]
    assert "config variable ${DATA_BUCKET} not set via driverEnv" in cronjob_problems(docs)


def test_scheduled_spark_application_is_valid():
    accounts = {
        d["metadata"]["name"] for d in load("cronjob.yaml") if d["kind"] == "ServiceAccount"
    }
    docs = load("scheduled-sparkapplication.yaml")
    assert scheduled_app_problems(docs, accounts) == []
    broken = copy.deepcopy(docs)
    broken[0]["spec"]["concurrencyPolicy"] = "Allow"
    broken[0]["spec"]["template"]["arguments"] = []
    problems = scheduled_app_problems(broken, accounts)
    assert any("Forbid" in p for p in problems) and any("--conf" in p for p in problems)


def test_both_manifests_size_the_spark_pods_alike():
    cron, app = load("cronjob.yaml"), load("scheduled-sparkapplication.yaml")
    assert pod_size_problems(cron, app) == []
    app = copy.deepcopy(app)
    app[0]["spec"]["template"]["executor"]["memory"] = "4g"
    assert pod_size_problems(cron, app) == [
        "spark.executor.memory=6g but the SparkApplication's executor.memory=4g"
    ]
    cron = copy.deepcopy(cron)
    args = cronjob_container(cron)["args"]
    del args[args.index("spark.driver.cores=2") - 1 : args.index("spark.driver.cores=2") + 1]
    assert "the CronJob sets no --conf spark.driver.cores" in pod_size_problems(cron, app)


@pytest.mark.parametrize("manifest", MANIFESTS)
def test_no_secret_is_written_into_a_manifest(manifest):
    docs = copy.deepcopy(load(manifest))
    # the check sees the literal environment the manifests do give
    assert {"DATA_BUCKET", "MLFLOW_TRACKING_URI"} <= set(literal_env(docs))
    assert secret_problems(docs) == []
    key = "sk-proj-NOTAREALKEY0123456789"
    if manifest == "cronjob.yaml":
        args = cronjob_container(docs)["args"]
        app = args.index("local:///opt/anime-recs/jobs/pipeline.py")
        args[app:app] = ["--conf", f"spark.kubernetes.driverEnv.OPENAI_API_KEY={key}"]
    else:
        driver_env = docs[0]["spec"]["template"]["driver"]["env"]
        # the way docker/README.md says: from a Secret, not flagged
        secret_ref = {"name": "anime-recs-secrets", "key": "openai-api-key"}
        driver_env.append({"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": secret_ref}})
        assert secret_problems(docs) == []
        driver_env.append({"name": "EXTRA_URI", "value": f"https://user:{key}@example.com"})
    (problem,) = secret_problems(docs)
    assert problem.endswith("is written into the manifest: take it from a Secret (secretKeyRef)")


def test_dockerfile_pins_the_project_versions():
    text = (DOCKER / "Dockerfile").read_text()
    pins = dict(
        re.match(r"([\w.-]+)==([\w.+-]+)", d).groups()
        for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    )
    base = re.search(r"^ARG SPARK_IMAGE=apache/spark:([\w.-]+)$", text, re.M)
    assert base and base.group(1).startswith(f"{pins['pyspark']}-scala2.13-java17-python3")
    delta_version = DELTA_PACKAGE.rsplit(":", 1)[1]
    assert re.search(rf"^ARG DELTA_VERSION={re.escape(delta_version)}$", text, re.M)
    assert re.search(r"^ARG DELTA_SPARK_SHA256=[0-9a-f]{64}$", text, re.M)
    assert re.search(r"^ARG DELTA_STORAGE_SHA256=[0-9a-f]{64}$", text, re.M)
    assert "sha256sum -c" in text
    assert re.search(rf"^ARG TORCH_VERSION={re.escape(pins['torch'])}$", text, re.M)
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", text, re.M)
    assert f"COPY jobs {IMAGE_ROOT}/jobs" in text and f"COPY conf {IMAGE_ROOT}/conf" in text
    # the generator is in no wheel: jobs/generate.py finds it in the image's lib/
    assert f"COPY lib/malgen {IMAGE_ROOT}/lib/malgen" in text
    # everything COPY takes from the build context passes docker/Dockerfile.dockerignore
    allowed = {
        ln[1:].rstrip("/")
        for ln in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
        if ln.startswith("!")
    }
    sources = {
        src
        for ln in text.splitlines()
        if ln.startswith("COPY ") and "--from=" not in ln
        for src in ln.split()[1:-1]
    }
    assert sources and {s.removeprefix("./").split("/")[0] for s in sources} <= allowed, sources
    # the base image's non-root user and work dir are kept at the end
    last = [ln for ln in text.splitlines() if re.match(r"^(USER|WORKDIR) ", ln)][-2:]
    assert last == ["WORKDIR /opt/spark/work-dir", "USER spark"]
