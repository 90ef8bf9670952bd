"""``lake deploy --env ENV``: package, then put the lake into an AWS account.

The plan, in order (``--dry-run`` prints it and touches nothing on AWS):

1. check that ``infra/pipelines.yaml`` is what the repo defines (``make infra``);
2. package the artifacts (:mod:`lib.tools.packaging`) into ``dist/``;
3. ``aws cloudformation deploy`` the foundation stack ``<project>-<env>-foundation``;
4. read its ``ArtifactsBucket`` output;
5. upload the artifacts to that bucket (SSE-KMS, content SHA-256 as metadata);
6. ``aws cloudformation deploy`` the pipelines stack ``<project>-<env>-pipelines`` with the
   new ``ReleaseId`` (the dry run also shows how each dataset's workflow starts: its upload
   events with their batching condition, and its scheduled sweep);
7. ``aws cloudformation deploy`` the uploads stack ``<project>-<env>-uploads`` (upload API,
   validator, alarms) with the same ``ReleaseId``.

Parameters per environment live in ``infra/env/<env>.json``:
``{"project": ..., "foundation": {Param: value}, "pipelines": {...}, "uploads": {...}}``; a
name the template does not declare is refused before anything runs.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import boto3

from lib.errors import LakeError
from lib.tools.infra import (
    FOUNDATION_PATH,
    REPO_ROOT,
    TEMPLATE_PATH,
    UPLOADS_PATH,
    check,
    load_template,
)
from lib.tools.packaging import Package, build

ENV_DIR = REPO_ROOT / "infra" / "env"
STACKS = {"foundation": FOUNDATION_PATH, "pipelines": TEMPLATE_PATH, "uploads": UPLOADS_PATH}


class DeployError(LakeError):
    """A deployment step failed or its configuration is wrong."""

    default_code = "deploy.error"


@dataclass(frozen=True)
class EnvConfig:
    env: str
    project: str
    parameters: Mapping[str, Mapping[str, str]]  # stack kind -> parameter overrides
    region: str | None = None

    def stack_name(self, kind: str) -> str:
        return f"{self.project}-{self.env}-{kind}"


def load_env(env: str, env_dir: Path = ENV_DIR, region: str | None = None) -> EnvConfig:
    path = env_dir / f"{env}.json"
    if not path.is_file():
        known = sorted(p.stem for p in env_dir.glob("*.json"))
        raise DeployError(f"no environment {env!r}: {path} does not exist; environments: "
                          f"{', '.join(known) or '(none)'}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DeployError(f"{path}: not valid JSON: {exc}") from exc
    project = data.get("project")
    if not isinstance(project, str) or not project:
        raise DeployError(f"{path}: \"project\" must be the project name (e.g. \"lake\")")
    unknown_sections = sorted(set(data) - {"project", "region", *STACKS})
    if unknown_sections:
        raise DeployError(f"{path}: unknown key(s) {', '.join(unknown_sections)}; expected "
                          f"project, region, {', '.join(STACKS)}")
    params: dict[str, dict[str, str]] = {}
    for kind, template_path in STACKS.items():
        given = data.get(kind, {})
        declared = load_template(template_path).get("Parameters", {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise DeployError(f"{path}: {kind} parameter(s) {', '.join(unknown)} are not in "
                              f"{template_path.name}; it declares: {', '.join(declared)}")
        reserved = sorted(set(given) & {"Project", "Env", "ReleaseId"})
        if reserved:
            raise DeployError(f"{path}: {kind}: {', '.join(reserved)} are set by the deploy "
                              "itself (from \"project\", the env name and the package)")
        params[kind] = {k: str(v).lower() if isinstance(v, bool) else str(v)
                        for k, v in given.items()}
    return EnvConfig(env, project, params, region or data.get("region"))


@dataclass
class Step:
    title: str
    lines: list[str]  # what the step does, as printed by --dry-run and before it runs
    run: Callable[[], None] | None = field(default=None, repr=False)


def cloudformation_deploy(cfg: EnvConfig, kind: str, extra: Mapping[str, str],
                          template_bucket: str | None = None) -> list[str]:
    """The ``aws cloudformation deploy`` command of one stack. With ``template_bucket`` the
    CLI stages the template in S3 first, which CloudFormation requires above 51,200 bytes
    (the generated template grows with every job version)."""
    overrides = {"Project": cfg.project, "Env": cfg.env, **extra, **cfg.parameters[kind]}
    cmd = ["aws", "cloudformation", "deploy",
           "--stack-name", cfg.stack_name(kind),
           "--template-file", str(STACKS[kind].relative_to(REPO_ROOT)),
           "--no-fail-on-empty-changeset",
           "--parameter-overrides", *[f"{k}={v}" for k, v in overrides.items()],
           "--tags", f"project={cfg.project}", f"env={cfg.env}"]
    if kind == "foundation":  # it creates the job and crawler roles by name
        cmd += ["--capabilities", "CAPABILITY_NAMED_IAM"]
    else:  # the Lambda roles, EventBridge's role to the workflows: named by CloudFormation
        cmd += ["--capabilities", "CAPABILITY_IAM"]
    if template_bucket:
        cmd += ["--s3-bucket", template_bucket, "--s3-prefix", "cloudformation"]
    if cfg.region:
        cmd += ["--region", cfg.region]
    return cmd


def event_starts(cfg: EnvConfig, release: str = "<release>") -> list[str]:
    """How each dataset's uploads are processed in this environment, from the pipelines
    template and the environment's parameters: its workflow's upload-events rules and EVENT
    trigger's batching condition, its sweep rule, and its fast lane (rule, FIFO queue,
    Lambda)."""
    template = load_template(TEMPLATE_PATH)
    res = template["Resources"]
    values = {k: str(p.get("Default", "")) for k, p in template["Parameters"].items()}
    values |= {k: str(v).lower() if isinstance(v, bool) else str(v)
               for k, v in cfg.parameters["pipelines"].items()}
    values |= {"Project": cfg.project, "Env": cfg.env, "ReleaseId": release}

    def name(value: Any) -> str:
        text = value["Fn::Sub"] if isinstance(value, dict) else value
        for key, val in values.items():
            text = text.replace("${" + key + "}", val)
        return text

    lines = []
    for trigger in (r["Properties"] for r in res.values()
                    if r["Type"] == "AWS::Glue::Trigger" and r["Properties"]["Type"] == "EVENT"):
        workflow_id = trigger["WorkflowName"]["Ref"]
        job = res[trigger["Actions"][0]["JobName"]["Ref"]]["Properties"]
        rules = {k: r["Properties"] for k, r in res.items() if r["Type"] == "AWS::Events::Rule"
                 and any(_workflow_target(t) == {"Ref": workflow_id}
                         for t in r["Properties"]["Targets"])}
        sweep = next(r for r in rules.values() if "ScheduleExpression" in r)
        batch = trigger["EventBatchingCondition"]
        sweep_on = values["SchedulesEnabled"] == "true"
        lines.append(
            f"workflow {name(res[workflow_id]['Properties']['Name'])}: job "
            f"{name(job['Name'])} on {values[batch['BatchSize']['Ref']]} upload event(s) or "
            f"{values[batch['BatchWindow']['Ref']]} s after the first (EVENT trigger "
            f"{name(trigger['Name'])}), then its crawlers")
        lines += [f"    events: rule {name(r['Name'])} ({_events(r['EventPattern'])})"
                  for r in rules.values() if "EventPattern" in r]
        lines.append(f"    sweep: rule {name(sweep['Name'])} "
                     f"{values[sweep['ScheduleExpression']['Ref']]} "
                     + ("ENABLED" if sweep_on else "DISABLED (SchedulesEnabled=false)"))
        dataset = _dataset_of(rules)
        lines += _fast_lane(res, dataset, name, values)
    return lines


def _workflow_target(target: dict) -> Any:
    sub = target["Arn"].get("Fn::Sub") if isinstance(target["Arn"], dict) else None
    return sub[1].get("Workflow") if isinstance(sub, list) else None


def _events(pattern: dict) -> str:
    """``Upload Accepted of orders, size_bytes > 67108864``."""
    detail = pattern["detail"]
    text = f"{', '.join(pattern['detail-type'])} of {detail['dataset'][0]}"
    for size in detail.get("size_bytes", []):
        text += f", size_bytes {' '.join(str(v) for v in size['numeric'])}"
    return text


def _dataset_of(rules: dict[str, dict]) -> str:
    return next(r["EventPattern"]["detail"]["dataset"][0] for r in rules.values()
                if "EventPattern" in r)


def _fast_lane(res: dict, dataset: str, name: Callable[[Any], str],
               values: dict[str, str]) -> list[str]:
    """The dataset's fast lane, as the template declares it (nothing when it has none)."""
    rule = next((r["Properties"] for r in res.values() if r["Type"] == "AWS::Events::Rule"
                 and "fast-lane" in json.dumps(r["Properties"].get("Targets", []))
                 and r["Properties"]["EventPattern"]["detail"]["dataset"] == [dataset]), None)
    if rule is None:
        return [f"    fast lane: none (fast_lane_max_bytes: 0 in {dataset}'s contract)"]
    queue_id = rule["Targets"][0]["Arn"]["Fn::GetAtt"][0]
    queue = res[queue_id]["Properties"]
    fn = next(r["Properties"] for r in res.values() if r["Type"] == "AWS::Lambda::Function"
              and r["Properties"]["Environment"]["Variables"].get("DATASET") == dataset)
    layer = res[fn["Layers"][0]["Ref"]]["Properties"]
    return [
        f"    fast lane: rule {name(rule['Name'])} ({_events(rule['EventPattern'])})",
        f"      -> FIFO queue {name(queue['QueueName'])} (message group "
        f"{rule['Targets'][0]['SqsParameters']['MessageGroupId']}, dead-letter queue after "
        f"{queue['RedrivePolicy']['maxReceiveCount']} receives, alarmed)",
        f"      -> Lambda {name(fn['FunctionName'])} ({fn['Runtime']}, {fn['Handler']}, "
        f"{values[fn['MemorySize']['Ref']]} MB, {values[fn['Timeout']['Ref']]} s, layer "
        f"{name(layer['Content']['S3Key'])}): DuckDB run of job v"
        f"{fn['Environment']['Variables']['JOB_VERSION']}, partitions registered at commit",
    ]


def upload_artifacts(package: Package, bucket: str, s3: Any) -> list[str]:
    """Put every artifact under its key (SSE-KMS with the bucket's key); returns the URIs."""
    uris = []
    for art in package.artifacts:
        with art.path.open("rb") as body:
            s3.put_object(Bucket=bucket, Key=art.key, Body=body, ContentType=art.content_type,
                          ServerSideEncryption="aws:kms",
                          Metadata={"sha256": art.sha256, "release": package.release})
        uris.append(f"s3://{bucket}/{art.key}")
    return uris


def stack_output(cloudformation: Any, stack: str, key: str) -> str:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except Exception as exc:  # botocore ClientError and friends
        raise DeployError(f"cannot describe stack {stack}: {exc}") from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if key not in outputs:
        raise DeployError(f"stack {stack} has no output {key}; outputs: "
                          f"{', '.join(sorted(outputs)) or '(none)'}")
    return outputs[key]


def plan(cfg: EnvConfig, dist: Path, out: TextIO,
         session_factory: Callable[[], Any] | None = None) -> list[Step]:
    """The deployment's steps. Packaging happens here (it is local); nothing on AWS is
    called until a step's ``run`` is."""
    stale = check()
    if stale:
        raise DeployError(stale)
    package = build(dist)
    state: dict[str, str] = {}

    def session() -> Any:
        if session_factory:
            return session_factory()
        return boto3.session.Session(region_name=cfg.region)

    def run_cmd(make_cmd: Callable[[], list[str]]) -> Callable[[], None]:
        def go() -> None:
            cmd = make_cmd()
            result = subprocess.run(cmd, check=False, cwd=REPO_ROOT)
            if result.returncode != 0:
                raise DeployError(f"`{shlex.join(cmd[:4])} ...` failed with exit code "
                                  f"{result.returncode} (see its output above)")
        return go

    def resolve_bucket() -> None:
        state["bucket"] = stack_output(session().client("cloudformation"),
                                       cfg.stack_name("foundation"), "ArtifactsBucket")

    def upload() -> None:
        for uri in upload_artifacts(package, state["bucket"], session().client("s3")):
            print(f"    uploaded {uri}", file=out, flush=True)

    def release_stack(kind: str, bucket: str) -> list[str]:
        return cloudformation_deploy(cfg, kind, {"ReleaseId": package.release}, bucket)

    foundation = cloudformation_deploy(cfg, "foundation", {})
    bucket = f"<ArtifactsBucket output of {cfg.stack_name('foundation')}>"
    return [
        Step("templates are current", [f"{TEMPLATE_PATH.relative_to(REPO_ROOT)} matches "
                                       "glue_jobs/, crawlers/ and infra/athena/"]),
        Step(f"package release {package.release}",
             [f"{dist}/{a.key}  sha256={a.sha256[:12]}" for a in package.artifacts]),
        Step(f"deploy stack {cfg.stack_name('foundation')}", [shlex.join(foundation)],
             run_cmd(lambda: foundation)),
        Step("find the artifacts bucket",
             [f"aws cloudformation describe-stacks --stack-name {cfg.stack_name('foundation')}"
              " -> output ArtifactsBucket"], resolve_bucket),
        Step(f"upload {len(package.artifacts)} artifacts",
             [f"s3://{bucket}/{a.key}" for a in package.artifacts], upload),
        Step(f"deploy stack {cfg.stack_name('pipelines')}",
             [shlex.join(release_stack("pipelines", bucket)),
              *event_starts(cfg, package.release)],
             run_cmd(lambda: release_stack("pipelines", state["bucket"]))),
        Step(f"deploy stack {cfg.stack_name('uploads')}",
             [shlex.join(release_stack("uploads", bucket)),
              "validator: an Upload Accepted event per accepted upload, on the default bus "
              f"(source {cfg.project}.{cfg.env}.uploads)"],
             run_cmd(lambda: release_stack("uploads", state["bucket"]))),
    ]


def deploy(cfg: EnvConfig, dist: Path, dry_run: bool, out: TextIO,
           session_factory: Callable[[], Any] | None = None) -> int:
    if not dry_run and shutil.which("aws") is None:
        raise DeployError("the AWS CLI (`aws`, v2) is not on PATH: install it and configure "
                          "credentials for the target account, or use --dry-run to see the plan")
    steps = plan(cfg, dist, out, session_factory)
    mode = "dry run: nothing is sent to AWS" if dry_run else "deploying"
    print(f"lake deploy: env {cfg.env}, project {cfg.project}, region "
          f"{cfg.region or '(AWS CLI default)'} ({mode})", file=out)
    for n, step in enumerate(steps, 1):
        print(f"[{n}/{len(steps)}] {step.title}", file=out)
        for line in step.lines:
            print(f"    {line}", file=out)
        out.flush()
        if not dry_run and step.run is not None:
            step.run()
    print("dry run complete: run without DRY_RUN=1 to deploy" if dry_run
          else f"deployed {cfg.env}", file=out)
    return 0
