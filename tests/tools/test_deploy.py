"""`lake deploy`: the plan a dry run prints, the upload to the artifacts bucket (moto), and
the two `aws cloudformation deploy` calls with their parameters."""

from __future__ import annotations

import io
import json
import shutil
import stat
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from lib.tools.cli import main
from lib.tools.deploy import DeployError, deploy, load_env, upload_artifacts
from lib.tools.packaging import build

REGION = "eu-west-1"
FOUNDATION_CMD = (
    "aws cloudformation deploy --stack-name lake-dev-foundation --template-file "
    "infra/foundation.yaml --no-fail-on-empty-changeset --parameter-overrides Project=lake "
    "Env=dev AlertEmail= ArchiveAfterDays=30 QuarantineRetentionDays=30 "
    "AthenaResultsRetentionDays=3 AthenaBytesScannedCutoff=1073741824 --tags project=lake "
    "env=dev --capabilities CAPABILITY_NAMED_IAM --region eu-west-1")


def pipelines_cmd(release: str, bucket: str) -> str:
    return ("aws cloudformation deploy --stack-name lake-dev-pipelines --template-file "
            "infra/pipelines.yaml --no-fail-on-empty-changeset --parameter-overrides "
            f"Project=lake Env=dev ReleaseId={release} WorkerType=G.1X NumberOfWorkers=2 "
            "JobTimeoutMinutes=30 JobMaxRetries=0 SchedulesEnabled=false --tags project=lake "
            f"env=dev --capabilities CAPABILITY_IAM --s3-bucket {bucket} --s3-prefix "
            "cloudformation --region eu-west-1")


def uploads_cmd(release: str, bucket: str) -> str:
    return ("aws cloudformation deploy --stack-name lake-dev-uploads --template-file "
            "infra/uploads.yaml --no-fail-on-empty-changeset --parameter-overrides "
            f"Project=lake Env=dev ReleaseId={release} ValidatorMaxConcurrency=2 "
            "ApiMaxConcurrency=5 LogRetentionDays=30 --tags project=lake env=dev "
            f"--capabilities CAPABILITY_IAM --s3-bucket {bucket} --s3-prefix cloudformation "
            "--region eu-west-1")


def _no_aws():
    raise AssertionError("a dry run must not create an AWS session")


def test_dry_run_prints_every_step_and_calls_nothing_on_aws(tmp_path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "javac").symlink_to(shutil.which("javac"))  # the package compiles jvm/
    monkeypatch.setenv("PATH", str(bin_dir))  # no `aws` anywhere
    out = io.StringIO()
    cfg = load_env("dev", region=REGION)
    assert deploy(cfg, tmp_path / "dist", dry_run=True, out=out, session_factory=_no_aws) == 0
    [manifest] = (tmp_path / "dist" / "releases").iterdir()
    release = manifest.stem
    lines = out.getvalue().splitlines()
    assert lines[0] == ("lake deploy: env dev, project lake, region eu-west-1 "
                        "(dry run: nothing is sent to AWS)")
    assert [ln for ln in lines if ln.startswith("[")] == [
        "[1/7] templates are current",
        f"[2/7] package release {release}",
        "[3/7] deploy stack lake-dev-foundation",
        "[4/7] find the artifacts bucket",
        "[5/7] upload 11 artifacts",
        "[6/7] deploy stack lake-dev-pipelines",
        "[7/7] deploy stack lake-dev-uploads",
    ]
    assert f"    {FOUNDATION_CMD}" in lines
    assert "    " + pipelines_cmd(release, "'<ArtifactsBucket output of lake-dev-foundation>'") \
        in lines
    assert "    " + uploads_cmd(release, "'<ArtifactsBucket output of lake-dev-foundation>'") \
        in lines
    for artifact in ("lib.zip", "lambda-deps.zip", "fast-lane-deps.zip"):
        assert ("    s3://<ArtifactsBucket output of lake-dev-foundation>/lib/"
                f"{release}/{artifact}") in lines
    # the event-driven starts: dev deploys with the schedules off, the events on
    events = lines[lines.index("[6/7] deploy stack lake-dev-pipelines") + 2:
                   lines.index("[7/7] deploy stack lake-dev-uploads")]
    assert events[7:] == [
        "    workflow lake-dev-orders: job lake-dev-orders-v2 on 50 upload event(s) or 300 s "
        "after the first (EVENT trigger lake-dev-orders-uploads), then its crawlers",
        "        events: rule lake-dev-orders-uploads (Upload Accepted of orders, size_bytes > "
        "67108864)",
        "        events: rule lake-dev-orders-pending (Uploads Pending of orders)",
        "        sweep: rule lake-dev-orders-sweep cron(20 2 * * ? *) DISABLED "
        "(SchedulesEnabled=false)",
        # the fast lane's resources: small uploads never wait for the workflow
        "        fast lane: rule lake-dev-orders-fast-lane (Upload Accepted of orders, "
        "size_bytes <= 67108864)",
        "          -> FIFO queue lake-dev-orders-fast-lane.fifo (message group orders, "
        "dead-letter queue after 3 receives, alarmed)",
        "          -> Lambda lake-dev-orders-fast-lane (python3.12, "
        "lib.lambdas.fast_lane.handler, 2048 MB, 120 s, layer "
        f"lib/{release}/fast-lane-deps.zip): DuckDB run of job v2, partitions registered at "
        "commit"]
    assert ("    validator: an Upload Accepted event per accepted upload, on the default bus "
            "(source lake.dev.uploads)") in lines
    assert lines[-1] == "dry run complete: run without DRY_RUN=1 to deploy"


def test_a_real_deploy_without_the_aws_cli_stops_before_anything(tmp_path, monkeypatch,
                                                                  capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["deploy", "--env", "dev", "--dist", str(tmp_path / "dist")]) == 2
    assert capsys.readouterr().err == (
        "lake: error: the AWS CLI (`aws`, v2) is not on PATH: install it and configure "
        "credentials for the target account, or use --dry-run to see the plan\n")
    assert not (tmp_path / "dist").exists()


@pytest.fixture
def aws(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def test_upload_puts_every_artifact_under_its_key_encrypted_with_its_hash(aws, tmp_path) -> None:
    package = build(tmp_path / "dist")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="artifacts", CreateBucketConfiguration={"LocationConstraint": REGION})
    uris = upload_artifacts(package, "artifacts", s3)
    assert uris == [f"s3://artifacts/{a.key}" for a in package.artifacts]
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"])
    assert listed == [a.key for a in package.artifacts]
    for art in package.artifacts:
        obj = s3.get_object(Bucket="artifacts", Key=art.key)
        assert obj["Body"].read() == art.path.read_bytes()
        assert obj["ServerSideEncryption"] == "aws:kms"
        assert obj["Metadata"] == {"sha256": art.sha256, "release": package.release}


def test_deploy_runs_the_three_stacks_and_uploads_to_the_foundation_bucket(aws, tmp_path,
                                                                      monkeypatch) -> None:
    """The foundation stack's output names the bucket; the fake `aws` records each call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "aws.log"
    fake = bin_dir / "aws"
    fake.write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    aws.client("cloudformation").create_stack(StackName="lake-dev-foundation", TemplateBody=json.dumps({
        "Resources": {"B": {"Type": "AWS::S3::Bucket",
                            "Properties": {"BucketName": "lake-dev-artifacts-test"}}},
        "Outputs": {"ArtifactsBucket": {"Value": {"Ref": "B"}}},
    }))
    out = io.StringIO()
    assert deploy(load_env("dev", region=REGION), tmp_path / "dist", dry_run=False, out=out,
                  session_factory=lambda: aws) == 0
    [manifest] = (tmp_path / "dist" / "releases").iterdir()
    assert log.read_text().splitlines() == [FOUNDATION_CMD[len("aws "):],
                                            pipelines_cmd(manifest.stem, "lake-dev-artifacts-test")
                                            [len("aws "):],
                                            uploads_cmd(manifest.stem, "lake-dev-artifacts-test")
                                            [len("aws "):]]
    keys = sorted(o["Key"] for o in aws.client("s3").list_objects_v2(
        Bucket="lake-dev-artifacts-test")["Contents"])
    assert f"lib/{manifest.stem}/lib.zip" in keys and "jobs/orders/v2/job.py" in keys
    assert f"lib/{manifest.stem}/lambda-deps.zip" in keys
    assert f"lib/{manifest.stem}/lake-spark.jar" in keys
    assert len(keys) == 11
    printed = out.getvalue().splitlines()
    assert f"    uploaded s3://lake-dev-artifacts-test/lib/{manifest.stem}/lib.zip" in printed
    assert printed[-1] == "deployed dev"


def test_a_failing_stack_deploy_stops_the_deploy_with_its_exit_code(aws, tmp_path,
                                                                    monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text("#!/bin/sh\nexit 254\n")
    (bin_dir / "aws").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    with pytest.raises(DeployError, match=r"^`aws cloudformation deploy --stack-name \.\.\.` "
                                          r"failed with exit code 254 \(see its output above\)$"):
        deploy(load_env("dev", region=REGION), tmp_path / "dist", dry_run=False,
               out=io.StringIO(), session_factory=lambda: aws)


def test_an_unknown_environment_lists_the_known_ones(tmp_path) -> None:
    with pytest.raises(DeployError, match=r"^no environment 'qa': .*/infra/env/qa\.json does "
                                          r"not exist; environments: dev, prod$"):
        load_env("qa")


def test_a_parameter_the_template_does_not_declare_is_refused(tmp_path) -> None:
    (tmp_path / "dev.json").write_text(json.dumps(
        {"project": "lake", "pipelines": {"WorkerCount": 3}}))
    with pytest.raises(DeployError) as err:
        load_env("dev", env_dir=tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'dev.json'}: pipelines parameter(s) WorkerCount are not in pipelines.yaml; "
        "it declares: Project, Env, ReleaseId, WorkerType, NumberOfWorkers, JobTimeoutMinutes, "
        "JobMaxRetries, SchedulesEnabled, EventBatchSize, EventBatchWindowSeconds, "
        "LedgerRetentionDays, FastLaneMemoryMB, FastLaneTimeoutSeconds, LogRetentionDays, "
        "QuarantineRatioThreshold, CustomersSchedule, OrdersSchedule")


def test_env_files_may_not_set_what_the_deploy_sets(tmp_path: Path) -> None:
    (tmp_path / "dev.json").write_text(json.dumps(
        {"project": "lake", "pipelines": {"ReleaseId": "x"}}))
    with pytest.raises(DeployError, match=r"pipelines: ReleaseId are set by the deploy itself"):
        load_env("dev", env_dir=tmp_path)
