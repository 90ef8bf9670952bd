"""CloudFormation under infra/: generated from the repo, no drift, secure defaults, and
cfn-lint and checkov clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.cli import job_versions
from lib.crawlers import load_crawlers
from lib.infra import (
    FOUNDATION_PATH,
    GLUE_VERSION,
    TEMPLATE_PATH,
    InfraError,
    athena_query_string,
    check,
    load_template,
)
from lib.query import NamedQuery, load_named_queries

REPO = Path(__file__).resolve().parents[1]
ENV_PREFIX = "${Project}-${Env}-"


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == kind}


def sub_text(value) -> str:
    """The template string of a Fn::Sub (either form)."""
    sub = value["Fn::Sub"]
    return sub[0] if isinstance(sub, list) else sub


def env_suffix(value) -> str:
    text = sub_text(value)
    assert text.startswith(ENV_PREFIX), f"name {text!r} is not built from Project and Env"
    return text[len(ENV_PREFIX):]


@pytest.fixture(scope="module")
def pipelines() -> dict:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def foundation() -> dict:
    return load_template(FOUNDATION_PATH)


# ------------------------------------------------------------------ no drift


def test_committed_pipelines_template_is_what_the_repo_generates() -> None:
    assert check() is None


def test_a_stale_template_is_reported_with_the_difference(tmp_path) -> None:
    stale = tmp_path / "pipelines.yaml"
    text = TEMPLATE_PATH.read_text(encoding="utf-8")
    stale.write_text(text.replace("${Project}-${Env}-orders-v2", "${Project}-${Env}-orders-v9"))
    message = check(stale)
    assert message is not None
    assert message.startswith(f"{stale} is out of date with the repo; run `make infra`:")
    assert "-        Fn::Sub: ${Project}-${Env}-orders-v9" in message
    assert "+        Fn::Sub: ${Project}-${Env}-orders-v2" in message


def test_every_job_version_has_a_glue_job_and_every_glue_job_a_job_version(pipelines) -> None:
    jobs = resources(pipelines, "AWS::Glue::Job")
    in_template = {env_suffix(p["Name"]) for p in jobs.values()}
    in_repo = {f"{ds}-v{v}" for ds, versions in job_versions().items() for v in versions}
    assert in_template == in_repo
    for props in jobs.values():
        dataset, version = env_suffix(props["Name"]).rsplit("-v", 1)
        assert sub_text(props["Command"]["ScriptLocation"]) == \
            f"s3://${{Bucket}}/jobs/{dataset}/v{version}/job.py"
        assert (REPO / "glue_jobs" / dataset / f"v{version}" / "job.py").is_file()


def test_every_crawler_definition_has_a_glue_crawler_with_its_settings(pipelines) -> None:
    crawlers = resources(pipelines, "AWS::Glue::Crawler")
    defs = load_crawlers()
    by_name = {env_suffix(p["Name"]).removesuffix("-crawler"): p for p in crawlers.values()}
    assert set(by_name) == set(defs)
    for name, props in by_name.items():
        d = defs[name]
        assert props["SchemaChangePolicy"] == {"UpdateBehavior": d.update_behavior,
                                               "DeleteBehavior": d.delete_behavior}
        assert props["RecrawlPolicy"] == {"RecrawlBehavior": d.recrawl_behavior}
        config = json.loads(props["Configuration"])
        assert config["CrawlerOutput"]["Partitions"] == {"AddOrUpdateBehavior": "InheritFromTable"}
        assert config["Grouping"] == {"TableGroupingPolicy": d.table_grouping}
        targets = props["Targets"]["S3Targets"]
        assert [sub_text(t["Path"]) for t in targets] == \
            [f"s3://${{Bucket}}/{ds}/" for ds in d.targets]
        assert all(t["Exclusions"] == list(d.exclusions) for t in targets)
        assert "CrawlerSecurityConfiguration" in props


def test_every_named_query_file_has_a_named_query_and_no_other_exists(pipelines) -> None:
    queries = resources(pipelines, "AWS::Athena::NamedQuery")
    assert {p["Name"] for p in queries.values()} == set(load_named_queries())


def test_each_dataset_workflow_schedules_its_latest_job_then_crawls_its_zones(pipelines) -> None:
    res = pipelines["Resources"]
    triggers = resources(pipelines, "AWS::Glue::Trigger")
    workflows = resources(pipelines, "AWS::Glue::Workflow")
    assert {env_suffix(p["Name"]) for p in workflows.values()} == set(job_versions())
    job_ids = {env_suffix(r["Properties"]["Name"]): k for k, r in res.items()
               if r["Type"] == "AWS::Glue::Job"}
    crawler_ids = {env_suffix(r["Properties"]["Name"]).removesuffix("-crawler"): k
                   for k, r in res.items() if r["Type"] == "AWS::Glue::Crawler"}
    for dataset, versions in job_versions().items():
        latest = job_ids[f"{dataset}-v{versions[-1]}"]
        by_type = {t["Type"]: t for t in triggers.values()
                   if env_suffix(t["Name"]).startswith(f"{dataset}-")}
        scheduled, conditional = by_type["SCHEDULED"], by_type["CONDITIONAL"]
        assert scheduled["Actions"] == [{"JobName": {"Ref": latest}}]
        assert scheduled["Schedule"] == {"Ref": f"{dataset.capitalize()}Schedule"}
        assert conditional["Predicate"]["Conditions"] == [
            {"LogicalOperator": "EQUALS", "JobName": {"Ref": latest}, "State": "SUCCEEDED"}]
        wanted = {crawler_ids[n] for n, d in load_crawlers().items() if dataset in d.targets}
        assert {a["CrawlerName"]["Ref"] for a in conditional["Actions"]} == wanted
        assert scheduled["WorkflowName"] == conditional["WorkflowName"]


def test_jobs_run_glue_5_with_the_versioned_lib_metrics_logs_and_lake_paths(pipelines) -> None:
    for props in resources(pipelines, "AWS::Glue::Job").values():
        args = props["DefaultArguments"]
        assert props["GlueVersion"] == GLUE_VERSION == "5.0"
        assert sub_text(args["--extra-py-files"]) == "s3://${Bucket}/lib/${ReleaseId}/lib.zip"
        assert args["--enable-metrics"] == "true"
        assert args["--enable-continuous-cloudwatch-log"] == "true"
        assert args["--job-bookmark-option"] == "job-bookmark-disable"
        assert {k for k in args if k.endswith("_root")} == \
            {"--lake_root", "--clean_root", "--quarantine_root"}
        assert args["--additional-python-modules"] == "PyYAML==6.0.3"
        assert props["WorkerType"] == {"Ref": "WorkerType"}
        assert props["NumberOfWorkers"] == {"Ref": "NumberOfWorkers"}
        assert props["Timeout"] == {"Ref": "JobTimeoutMinutes"}
        assert props["MaxRetries"] == {"Ref": "JobMaxRetries"}
        assert props["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
        assert props["SecurityConfiguration"] == \
            {"Fn::ImportValue": {"Fn::Sub": "${Project}-${Env}-SecurityConfiguration"}}


# ------------------------------------------------------------------ named query rewriting


def _query(sql: str) -> NamedQuery:
    return NamedQuery("q", "", sql, (), Path("q.sql"))


def test_query_database_names_become_the_environments_and_the_rest_is_kept() -> None:
    sql = ("-- name: q\nSELECT o.order_id, '${x}' AS s\nFROM clean.orders AS o\n"
           "JOIN quarantine.orders q ON q.order_id = o.order_id  -- clean.orders stays\n")
    assert athena_query_string(_query(sql), ["clean", "quarantine"]) == (
        "-- name: q\nSELECT o.order_id, '${!x}' AS s\nFROM ${CleanDatabase}.orders AS o\n"
        "JOIN ${QuarantineDatabase}.orders q ON q.order_id = o.order_id  -- clean.orders stays\n")


def test_a_query_on_a_database_no_crawler_writes_is_refused() -> None:
    with pytest.raises(InfraError, match=r"^q.sql: database\(s\) raw are not lake databases "
                                         r"\(the crawlers write: clean, quarantine\)$"):
        athena_query_string(_query("SELECT * FROM raw.orders"), ["clean", "quarantine"])


# ------------------------------------------------------------------ foundation


def test_every_name_is_built_from_project_and_env(foundation, pipelines) -> None:
    name_keys = ("BucketName", "RoleName", "Name", "TopicName", "AliasName")
    for template in (foundation, pipelines):
        for logical, res in template["Resources"].items():
            if res["Type"] in ("AWS::Athena::NamedQuery", "AWS::Glue::Database"):
                continue  # named within the env's workgroup / built from Project and Env below
            for key in name_keys:
                if key in res["Properties"]:
                    text = sub_text(res["Properties"][key])
                    assert "${Project}" in text and "${Env}" in text, (logical, key, text)
    for props in resources(pipelines, "AWS::Glue::Database").values():
        assert sub_text(props["DatabaseInput"]["Name"]).startswith("${Project}_${Env}_")
    for template in (foundation, pipelines):
        assert template["Parameters"]["Project"]["AllowedPattern"] == "^[a-z][a-z0-9]{1,11}$"
        assert template["Parameters"]["Env"]["AllowedValues"] == ["dev", "prod"]


def test_buckets_are_encrypted_private_tls_only_and_logged(foundation) -> None:
    buckets = resources(foundation, "AWS::S3::Bucket")
    policies = {p["Bucket"]["Ref"]: p for p in resources(foundation, "AWS::S3::BucketPolicy").values()}
    assert set(buckets) == {"AccessLogBucket", "RawBucket", "CleanBucket", "QuarantineBucket",
                            "ArtifactsBucket", "AthenaResultsBucket"}
    for name, props in buckets.items():
        block = props["PublicAccessBlockConfiguration"]
        assert all(block[k] is True for k in ("BlockPublicAcls", "BlockPublicPolicy",
                                              "IgnorePublicAcls", "RestrictPublicBuckets")), name
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        expected = "AES256" if name == "AccessLogBucket" else "aws:kms"
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == expected, name
        deny = policies[name]["PolicyDocument"]["Statement"][0]
        assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        if name != "AccessLogBucket":
            assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
    assert buckets["RawBucket"]["VersioningConfiguration"] == {"Status": "Enabled"}
    key = resources(foundation, "AWS::KMS::Key")["LakeKey"]
    assert key["EnableKeyRotation"] is True


def test_lifecycle_archives_raw_and_expires_quarantine_and_query_results(foundation) -> None:
    buckets = resources(foundation, "AWS::S3::Bucket")

    def rules(bucket: str) -> dict[str, dict]:
        return {r["Id"]: r for r in buckets[bucket]["LifecycleConfiguration"]["Rules"]}

    archive = rules("RawBucket")["archive-processed-uploads"]
    assert archive["Prefix"] == "archive/"
    assert archive["Transitions"] == [{"StorageClass": "GLACIER_IR",
                                       "TransitionInDays": {"Ref": "ArchiveAfterDays"}}]
    assert rules("QuarantineBucket")["expire-quarantined-rows"]["ExpirationInDays"] == \
        {"Ref": "QuarantineRetentionDays"}
    assert rules("AthenaResultsBucket")["expire-query-results"]["ExpirationInDays"] == \
        {"Ref": "AthenaResultsRetentionDays"}


def test_roles_have_no_wildcard_s3_resources_and_no_managed_policies(foundation) -> None:
    roles = resources(foundation, "AWS::IAM::Role")
    assert set(roles) == {"GlueJobRole", "GlueCrawlerRole"}
    for name, props in roles.items():
        assert "ManagedPolicyArns" not in props, name
        for policy in props["Policies"]:
            for st in policy["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                assert not any(a.endswith("*") for a in actions), (name, st["Sid"])
                if any(a.startswith("s3:") for a in actions):
                    res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                    assert "*" not in res, (name, st["Sid"])
                if st["Resource"] == "*":
                    assert st["Action"] == "cloudwatch:PutMetricData" and "Condition" in st


def test_athena_workgroup_enforces_encrypted_results_and_a_scan_cutoff(foundation) -> None:
    wg = resources(foundation, "AWS::Athena::WorkGroup")["AthenaWorkGroup"]
    config = wg["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    assert config["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"


def test_alert_rules_cover_failed_timed_out_and_stopped_jobs_and_failed_crawlers(foundation) -> None:
    rules = resources(foundation, "AWS::Events::Rule")
    job = rules["JobFailureRule"]["EventPattern"]
    assert job["detail-type"] == ["Glue Job State Change"]
    assert job["detail"]["state"] == ["FAILED", "TIMEOUT", "STOPPED"]
    crawler = rules["CrawlerFailureRule"]["EventPattern"]
    assert crawler["detail-type"] == ["Glue Crawler State Change"]
    assert crawler["detail"]["state"] == ["Failed"]
    for rule in rules.values():
        assert rule["Targets"][0]["Arn"] == {"Ref": "AlertTopic"}
    assert resources(foundation, "AWS::SNS::Subscription")["AlertSubscription"]["Endpoint"] == \
        {"Ref": "AlertEmail"}


# ------------------------------------------------------------------ static checks


def test_the_foundation_template_deploys_without_staging_it_in_s3() -> None:
    # `aws cloudformation deploy` needs --s3-bucket above 51,200 bytes, and the foundation
    # stack creates the bucket; the pipelines stack is staged in it (lib.deploy).
    assert len(FOUNDATION_PATH.read_bytes()) < 51_200


def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    out = subprocess.run([str(cfn_lint), str(FOUNDATION_PATH), str(TEMPLATE_PATH)],
                         capture_output=True, text=True, check=False)
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


def test_every_checkov_suppression_carries_a_reason(foundation, pipelines) -> None:
    skips = [(logical, s) for t in (foundation, pipelines) for logical, r in t["Resources"].items()
             for s in r.get("Metadata", {}).get("checkov", {}).get("skip", [])]
    assert skips, "expected the documented suppressions"
    for logical, skip in skips:
        assert skip["id"].startswith("CKV_") and len(skip.get("comment", "")) > 20, logical


def _checkov() -> str:
    path = os.environ.get("LAKE_CHECKOV")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("LAKE_CHECKOV is not set: run the tests with `make test`")
        pytest.skip("checkov runs under `make test` (LAKE_CHECKOV points at .venv-checkov)")
    if not Path(path).is_file():
        pytest.fail(f"LAKE_CHECKOV={path} does not exist: run `make test`, which installs it")
    return path


def test_checkov_fails_no_check_and_skips_only_the_documented_ones(foundation, pipelines) -> None:
    out = subprocess.run([_checkov(), "--skip-download", "--framework", "cloudformation",
                          "--output", "json", "-f", str(FOUNDATION_PATH), "-f", str(TEMPLATE_PATH)],
                         capture_output=True, text=True, check=False)
    reports = json.loads(out.stdout)
    report = reports[0] if isinstance(reports, list) else reports
    results = report["results"]
    assert [(c["check_id"], c["resource"]) for c in results["failed_checks"]] == []
    assert out.returncode == 0, out.stderr[-2000:]
    skipped = sorted((c["check_id"], c["resource"]) for c in results["skipped_checks"])
    assert skipped == [("CKV_AWS_18", "AWS::S3::Bucket.AccessLogBucket"),
                       ("CKV_AWS_21", "AWS::S3::Bucket.AccessLogBucket"),
                       ("CKV_AWS_21", "AWS::S3::Bucket.AthenaResultsBucket")]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] == len(foundation["Resources"]) + len(pipelines["Resources"])
    assert summary["passed"] > 50
