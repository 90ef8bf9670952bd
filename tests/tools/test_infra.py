"""CloudFormation under infra/: generated from the repo, no drift, secure defaults, and
cfn-lint and checkov clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.tools.crawlers import load_crawlers
from lib.tools.infra import (
    FOUNDATION_PATH,
    GLUE_VERSION,
    METRICS_NAMESPACE,
    TEMPLATE_PATH,
    UPLOADS_PATH,
    InfraError,
    athena_query_string,
    build_template,
    check,
    load_template,
    pinned_job_modules,
)
from lib.tools.job_versions import job_versions
from lib.tools.query import NamedQuery, load_named_queries
from tests.helpers import REPO

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


@pytest.fixture(scope="module")
def uploads() -> dict:
    return load_template(UPLOADS_PATH)


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


def test_each_dataset_workflow_starts_its_latest_job_on_upload_events_then_crawls(
        pipelines) -> None:
    """One start trigger per workflow (Glue allows one): EVENT, with the batching condition;
    then the CONDITIONAL crawl trigger."""
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
        mine = [t for t in triggers.values() if env_suffix(t["Name"]).startswith(f"{dataset}-")]
        assert sorted(t["Type"] for t in mine) == ["CONDITIONAL", "EVENT"]
        by_type = {t["Type"]: t for t in mine}
        event, conditional = by_type["EVENT"], by_type["CONDITIONAL"]
        assert event["Actions"] == [{"JobName": {"Ref": latest}}]
        assert event["EventBatchingCondition"] == {
            "BatchSize": {"Ref": "EventBatchSize"},
            "BatchWindow": {"Ref": "EventBatchWindowSeconds"}}
        assert conditional["Predicate"]["Conditions"] == [
            {"LogicalOperator": "EQUALS", "JobName": {"Ref": latest}, "State": "SUCCEEDED"}]
        wanted = {crawler_ids[n] for n, d in load_crawlers().items() if dataset in d.targets}
        assert {a["CrawlerName"]["Ref"] for a in conditional["Actions"]} == wanted
        assert event["WorkflowName"] == conditional["WorkflowName"] == {
            "Ref": f"{dataset.capitalize()}Workflow"}
    params = pipelines["Parameters"]
    assert (params["EventBatchSize"]["Default"], params["EventBatchSize"]["MaxValue"]) == (50, 100)
    assert (params["EventBatchWindowSeconds"]["Default"],
            params["EventBatchWindowSeconds"]["MaxValue"]) == (300, 900)


def _workflow_arn(dataset: str) -> dict:
    return {"Fn::Sub": ["arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:"
                        "workflow/${Workflow}",
                        {"Workflow": {"Ref": f"{dataset.capitalize()}Workflow"}}]}


def test_a_datasets_upload_events_and_its_schedule_reach_its_workflow(pipelines) -> None:
    """The rules match the validator's and the job's events of that dataset only: the
    uploads above the fast lane's limit and the "Uploads Pending" events (the complement of
    the fast lane's rule); the schedule stays, as a sweep rule on the same workflow; all
    through one role."""
    rules = resources(pipelines, "AWS::Events::Rule")
    target = lambda ds: [{"Id": "workflow", "Arn": _workflow_arn(ds),  # noqa: E731
                          "RoleArn": {"Fn::GetAtt": ["WorkflowEventsRole", "Arn"]}}]
    source = [{"Fn::Sub": "${Project}.${Env}.uploads"}]
    for dataset in job_versions():
        name = dataset.capitalize()
        uploads = rules[f"{name}UploadEventsRule"]
        assert uploads["EventPattern"] == {
            "source": source, "detail-type": ["Upload Accepted"],
            "detail": {"dataset": [dataset], "size_bytes": [{"numeric": [">", 64 << 20]}]}}
        assert uploads["State"] == "ENABLED" and uploads["Targets"] == target(dataset)
        pending = rules[f"{name}PendingEventsRule"]
        assert pending["EventPattern"] == {"source": source, "detail-type": ["Uploads Pending"],
                                           "detail": {"dataset": [dataset]}}
        assert pending["State"] == "ENABLED" and pending["Targets"] == target(dataset)
        sweep = rules[f"{name}SweepRule"]
        assert sweep["ScheduleExpression"] == {"Ref": f"{name}Schedule"}
        assert sweep["State"] == {"Fn::If": ["SchedulesOn", "ENABLED", "DISABLED"]}
        assert sweep["Targets"] == target(dataset)
    assert len(rules) == 4 * len(job_versions())  # uploads, pending, sweep, fast lane
    role = pipelines["Resources"]["WorkflowEventsRole"]["Properties"]
    [assume] = role["AssumeRolePolicyDocument"]["Statement"]
    assert (assume["Principal"], assume["Action"]) == (
        {"Service": "events.amazonaws.com"}, "sts:AssumeRole")
    assert assume["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    [policy] = role["Policies"]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Allow", "glue:notifyEvent")
    assert statement["Resource"] == [_workflow_arn(d) for d in sorted(job_versions())]


def test_a_dataset_without_a_fast_lane_sends_all_its_upload_events_to_its_workflow() -> None:
    """fast_lane_max_bytes: 0 -> one rule for both event types, no size filter, and no fast
    lane resources (nor its layer) at all."""
    jobs = {"orders": [1, 2]}
    template = build_template(jobs, load_crawlers(), {}, pinned_job_modules(), {"orders": 0})
    rules = resources(template, "AWS::Events::Rule")
    assert sorted(rules) == ["OrdersSweepRule", "OrdersUploadEventsRule"]
    assert rules["OrdersUploadEventsRule"]["EventPattern"] == {
        "source": [{"Fn::Sub": "${Project}.${Env}.uploads"}],
        "detail-type": ["Upload Accepted", "Uploads Pending"], "detail": {"dataset": ["orders"]}}
    assert not [k for k in template["Resources"] if "FastLane" in k]


def test_each_dataset_has_a_fast_lane_rule_fifo_queue_dlq_alarm_and_python312_function(
        pipelines) -> None:
    """The fast lane's rule takes exactly the uploads the workflow's rule leaves (<= the
    limit against > it) into a FIFO queue of one message group (the dataset: one run of it
    at a time), whose failures go to a dead-letter queue with an alarm; the function runs the
    release's handler on python3.12 with the DuckDB layer, the dataset's latest job version
    and limit."""
    res = pipelines["Resources"]
    layer = res["FastLaneLayer"]["Properties"]
    assert (layer["CompatibleRuntimes"], sub_text(layer["Content"]["S3Key"])) == (
        ["python3.12"], "lib/${ReleaseId}/fast-lane-deps.zip")
    for dataset, versions in job_versions().items():
        name = dataset.capitalize()
        rule = res[f"{name}FastLaneRule"]["Properties"]
        glue_rule = res[f"{name}UploadEventsRule"]["Properties"]
        assert rule["EventPattern"]["detail"] == {
            "dataset": [dataset], "size_bytes": [{"numeric": ["<=", 64 << 20]}]}
        assert rule["EventPattern"]["detail-type"] == glue_rule["EventPattern"]["detail-type"]
        [target] = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [f"{name}FastLaneQueue", "Arn"]}
        assert target["SqsParameters"] == {"MessageGroupId": dataset}
        queue = res[f"{name}FastLaneQueue"]["Properties"]
        dlq = res[f"{name}FastLaneDeadLetterQueue"]["Properties"]
        assert queue["FifoQueue"] and queue["ContentBasedDeduplication"] and dlq["FifoQueue"]
        assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {
            "Fn::GetAtt": [f"{name}FastLaneDeadLetterQueue", "Arn"]}, "maxReceiveCount": 3}
        params = pipelines["Parameters"]
        assert queue["VisibilityTimeout"] >= 6 * params["FastLaneTimeoutSeconds"]["MaxValue"]
        alarm = res[f"{name}FastLaneDeadLetterAlarm"]["Properties"]
        assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {
            "Fn::GetAtt": [f"{name}FastLaneDeadLetterQueue", "QueueName"]}}]
        fn = res[f"{name}FastLaneFunction"]["Properties"]
        assert (fn["Runtime"], fn["Handler"], fn["Layers"]) == (
            "python3.12", "lib.lambdas.fast_lane.handler", [{"Ref": "FastLaneLayer"}])
        assert sub_text(fn["Code"]["S3Key"]) == "lib/${ReleaseId}/lib.zip"
        env = fn["Environment"]["Variables"]
        assert (env["DATASET"], env["JOB_VERSION"], env["LAKE_FAST_LANE_MAX_BYTES"]) == (
            dataset, str(max(versions)), str(64 << 20))
        assert env["CLEAN_DATABASE"] == {"Ref": "CleanDatabase"}
        mapping = res[f"{name}FastLaneEventSource"]["Properties"]
        assert mapping["EventSourceArn"] == {"Fn::GetAtt": [f"{name}FastLaneQueue", "Arn"]}
        assert mapping["FunctionName"] == {"Ref": f"{name}FastLaneFunction"}


def test_a_fast_lane_role_reaches_its_own_datasets_objects_and_tables_only(pipelines) -> None:
    res = pipelines["Resources"]
    for dataset in job_versions():
        name = dataset.capitalize()
        policy = res[f"{name}FastLaneRole"]["Properties"]["Policies"]
        statements = [st for p in policy for st in p["PolicyDocument"]["Statement"]]
        for st in statements:
            assert "*" not in st["Action"] and st["Resource"] != "*", st["Sid"]
            if any(a.startswith("s3:") and a != "s3:ListBucket" for a in st["Action"]):
                keys = [sub_text(r).split("}/", 1)[1] for r in st["Resource"]]
                assert keys and all(
                    k.startswith((f"{dataset}/", f"raw/{dataset}/", f"archive/{dataset}/",
                                  f"_reports/{dataset}/", f"_commits/{dataset}/",
                                  f"_staging/{dataset}/")) for k in keys), keys
            if any(a.startswith("glue:") for a in st["Action"]):
                tables = [sub_text(r) for r in st["Resource"] if ":table/" in sub_text(r)]
                assert tables and all(t.endswith(f"/{dataset}") for t in tables), tables
        listing = next(st for st in statements if st["Action"] == ["s3:ListBucket"])
        assert all(p.startswith((f"{dataset}/", f"raw/{dataset}/", f"archive/{dataset}/",
                                 f"_reports/{dataset}/", f"_commits/{dataset}/",
                                 f"_staging/{dataset}/"))
                   for p in listing["Condition"]["StringLike"]["s3:prefix"])


def test_who_puts_upload_events_may_put_only_the_lakes_own(pipelines) -> None:
    """The validator (uploads stack) and the jobs (foundation's job role) may put events on
    the default bus with the lake's source only; the jobs are told the bus and source."""
    source = {"Fn::Sub": "${Project}.${Env}.uploads"}
    bus = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:"
                      "event-bus/default"}
    for path, role in ((UPLOADS_PATH, "ValidatorRole"), (FOUNDATION_PATH, "GlueJobRole")):
        statements = [st for p in load_template(path)["Resources"][role]["Properties"]["Policies"]
                      for st in p["PolicyDocument"]["Statement"]
                      if "events:PutEvents" in str(st["Action"])]
        assert [(st["Action"], st["Resource"], st["Condition"]) for st in statements] == [
            ("events:PutEvents", bus, {"StringEquals": {"events:source": source}})], role
    env = load_template(UPLOADS_PATH)["Resources"]["ValidatorFunction"]["Properties"][
        "Environment"]["Variables"]
    assert (env["EVENT_BUS_NAME"], env["EVENT_SOURCE"]) == ("default", source)
    for props in resources(pipelines, "AWS::Glue::Job").values():
        args = props["DefaultArguments"]
        assert (args["--event_bus_name"], args["--event_source"]) == ("default", source)


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
        assert args["--additional-python-modules"] == \
            "PyYAML==6.0.3,Jinja2==3.1.6,MarkupSafe==3.0.4"
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


def test_every_name_is_built_from_project_and_env(foundation, pipelines, uploads) -> None:
    name_keys = ("BucketName", "RoleName", "Name", "TopicName", "AliasName", "TableName",
                 "QueueName", "AlarmName", "DashboardName", "LayerName", "LogGroupName")
    for template in (foundation, pipelines, uploads):
        for logical, res in template["Resources"].items():
            if res["Type"] in ("AWS::Athena::NamedQuery", "AWS::Glue::Database"):
                continue  # named within the env's workgroup / built from Project and Env below
            for key in name_keys:
                if key in res["Properties"]:
                    text = sub_text(res["Properties"][key])
                    assert "${Project}" in text and "${Env}" in text, (logical, key, text)
    for props in resources(pipelines, "AWS::Glue::Database").values():
        assert sub_text(props["DatabaseInput"]["Name"]).startswith("${Project}_${Env}_")
    for template in (foundation, pipelines, uploads):
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


def test_roles_have_no_wildcard_s3_resources_and_no_managed_policies(foundation,
                                                                     uploads) -> None:
    roles = resources(foundation, "AWS::IAM::Role") | resources(uploads, "AWS::IAM::Role")
    assert set(roles) == {"GlueJobRole", "GlueCrawlerRole", "UploadApiRole", "ValidatorRole"}
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
    # stack creates the bucket; the pipelines stack is staged in it (lib.tools.deploy).
    assert len(FOUNDATION_PATH.read_bytes()) < 51_200


def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    out = subprocess.run([str(cfn_lint), str(FOUNDATION_PATH), str(TEMPLATE_PATH),
                          str(UPLOADS_PATH)],
                         capture_output=True, text=True, check=False)
    assert (out.returncode, out.stdout + out.stderr) == (0, "")


def test_every_checkov_suppression_carries_a_reason(foundation, pipelines, uploads) -> None:
    skips = [(logical, s) for t in (foundation, pipelines, uploads)
             for logical, r in t["Resources"].items()
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


def test_checkov_fails_no_check_and_skips_only_the_documented_ones(foundation, pipelines,
                                                                  uploads) -> None:
    out = subprocess.run([_checkov(), "--skip-download", "--framework", "cloudformation",
                          "--output", "json", "-f", str(FOUNDATION_PATH), "-f", str(TEMPLATE_PATH),
                          "-f", str(UPLOADS_PATH)],
                         capture_output=True, text=True, check=False)
    reports = json.loads(out.stdout)
    report = reports[0] if isinstance(reports, list) else reports
    results = report["results"]
    assert [(c["check_id"], c["resource"]) for c in results["failed_checks"]] == []
    assert out.returncode == 0, out.stderr[-2000:]
    skipped = sorted((c["check_id"], c["resource"]) for c in results["skipped_checks"])
    lambda_skips = [(check, f"AWS::Lambda::Function.{fn}")
                    for check in ("CKV_AWS_116", "CKV_AWS_117")
                    for fn in ("UploadApiFunction", "ValidatorFunction",
                               *(f"{ds.capitalize()}FastLaneFunction" for ds in job_versions()))]
    assert skipped == sorted([("CKV_AWS_18", "AWS::S3::Bucket.AccessLogBucket"),
                              ("CKV_AWS_21", "AWS::S3::Bucket.AccessLogBucket"),
                              ("CKV_AWS_21", "AWS::S3::Bucket.AthenaResultsBucket"),
                              *lambda_skips])
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] == sum(len(t["Resources"])
                                            for t in (foundation, pipelines, uploads))
    assert summary["passed"] > 50


# ------------------------------------------------------------------ the upload path on AWS


def _imports(node) -> set[str]:
    """The export names a template imports (Fn::ImportValue of a Fn::Sub)."""
    if isinstance(node, dict):
        if "Fn::ImportValue" in node:
            return {sub_text(node["Fn::ImportValue"])}
        return set().union(*(_imports(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_imports(v) for v in node)) if node else set()
    return set()


def test_every_import_is_an_export_of_the_foundation(foundation, pipelines, uploads) -> None:
    exported = {sub_text(o["Export"]["Name"]) for o in foundation["Outputs"].values()
                if "Export" in o}
    for template in (pipelines, uploads):
        imported = _imports(template["Resources"])
        assert imported and imported <= exported, imported - exported


def test_the_functions_run_lib_handlers_from_the_release_with_its_layer(uploads) -> None:
    import importlib

    from lib.lambdas.settings import Settings

    functions = resources(uploads, "AWS::Lambda::Function")
    assert set(functions) == {"UploadApiFunction", "ValidatorFunction"}
    for props in functions.values():
        module, _, name = props["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), props["Handler"]
        assert props["Runtime"] == "python3.11"  # the Glue 5 Python
        assert sub_text(props["Code"]["S3Key"]) == "lib/${ReleaseId}/lib.zip"
        assert props["Layers"] == [{"Ref": "DependenciesLayer"}]
        env = props["Environment"]["Variables"]
        # Every variable the template sets is one the function reads (and the required ones
        # are there): the settings built from exactly those names carry each of them.
        given = {k: "x" for k in env} | {"LAKE_MAX_UPLOAD_BYTES": "10",
                                         "UPLOAD_URL_EXPIRES_SECONDS": "900"}
        settings = Settings.from_env({k: v for k, v in given.items() if k in env})
        read = {"LEDGER_TABLE": settings.ledger_table, "RAW_BUCKET": settings.raw_bucket,
                "KMS_KEY_ARN": settings.kms_key_arn, "ALERT_TOPIC_ARN": settings.alert_topic_arn,
                "METRICS_NAMESPACE": settings.metrics_namespace,
                "LAKE_MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
                "UPLOAD_URL_EXPIRES_SECONDS": str(settings.url_expires_seconds),
                "EVENT_BUS_NAME": settings.event_bus, "EVENT_SOURCE": settings.event_source}
        assert {k: read[k] for k in env} == {k: given[k] for k in env}
    layer = resources(uploads, "AWS::Lambda::LayerVersion")["DependenciesLayer"]
    assert sub_text(layer["Content"]["S3Key"]) == "lib/${ReleaseId}/lambda-deps.zip"
    validator = functions["ValidatorFunction"]["Environment"]["Variables"]
    assert sub_text(validator["METRICS_NAMESPACE"]) == METRICS_NAMESPACE
    assert "ALERT_TOPIC_ARN" in validator
    assert "KMS_KEY_ARN" in functions["UploadApiFunction"]["Environment"]["Variables"]


def test_the_api_has_exactly_the_handlers_routes_all_behind_iam(uploads) -> None:
    from lib.lambdas.upload_api import ROUTES

    routes = resources(uploads, "AWS::ApiGatewayV2::Route").values()
    assert sorted(r["RouteKey"] for r in routes) == sorted(ROUTES)
    assert {r["AuthorizationType"] for r in routes} == {"AWS_IAM"}
    [api] = resources(uploads, "AWS::ApiGatewayV2::Api").values()
    assert api["ProtocolType"] == "HTTP"
    [stage] = resources(uploads, "AWS::ApiGatewayV2::Stage").values()
    assert "AccessLogSettings" in stage and "ThrottlingRateLimit" in stage["DefaultRouteSettings"]


def test_raw_uploads_reach_the_validator_with_bounded_retries_and_a_dlq(foundation,
                                                                         uploads) -> None:
    [notification] = resources(foundation, "AWS::S3::Bucket")["RawBucket"][
        "NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "raw/"}]
    assert notification["Queue"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    queues = resources(foundation, "AWS::SQS::Queue")
    redrive = queues["UploadQueue"]["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": ["UploadDeadLetterQueue", "Arn"]},
                       "maxReceiveCount": {"Ref": "UploadMaxReceiveCount"}}
    assert all("KmsMasterKeyId" in q for q in queues.values())
    [mapping] = resources(uploads, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["FunctionName"] == {"Ref": "ValidatorFunction"}
    assert _imports(mapping["EventSourceArn"]) == {"${Project}-${Env}-UploadQueueArn"}
    # SQS must not hand a message to a second validator while the first may still run.
    visibility = foundation["Parameters"]["UploadVisibilityTimeoutSeconds"]
    timeout = uploads["Parameters"]["ValidatorTimeoutSeconds"]
    assert visibility["Default"] >= 6 * timeout["Default"]
    assert visibility["MinValue"] >= 6 * timeout["MinValue"]
    alarm = resources(uploads, "AWS::CloudWatch::Alarm")["DeadLetterAlarm"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert _imports(alarm["Dimensions"]) == {"${Project}-${Env}-UploadDeadLetterQueueName"}


def test_the_ledger_table_has_the_index_and_ttl_the_code_uses(foundation) -> None:
    from lib.ledger.dynamo import INDEX

    table = resources(foundation, "AWS::DynamoDB::Table")["LedgerTable"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == INDEX
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["dataset", "status_key"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["SSESpecification"]["SSEType"] == "KMS"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    job_role = resources(foundation, "AWS::IAM::Role")["GlueJobRole"]
    [ledger_st] = [st for p in job_role["Policies"] for st in p["PolicyDocument"]["Statement"]
                   if st["Sid"] == "UploadLedger"]
    assert {"Fn::Sub": f"${{LedgerTable.Arn}}/index/{INDEX}"} in ledger_st["Resource"]


def test_jobs_get_the_ledger_alerts_and_metrics_arguments(pipelines) -> None:
    for props in resources(pipelines, "AWS::Glue::Job").values():
        args = props["DefaultArguments"]
        assert _imports(args["--ledger_table"]) == {"${Project}-${Env}-LedgerTable"}
        assert _imports(args["--alert_topic_arn"]) == {"${Project}-${Env}-AlertTopicArn"}
        assert args["--ledger_retention_days"] == {"Ref": "LedgerRetentionDays"}
        assert sub_text(args["--metrics_namespace"]) == METRICS_NAMESPACE
        assert args["--aws_region"] == {"Ref": "AWS::Region"}
        # where a run registers the partitions it publishes: the crawlers' databases
        assert (args["--clean_database"], args["--quarantine_database"]) == (
            {"Ref": "CleanDatabase"}, {"Ref": "QuarantineDatabase"})
        assert "--table_prefix" not in args  # the crawlers' prefix is empty


def test_the_job_role_may_register_tables_and_partitions_of_its_env_only(foundation) -> None:
    job_role = resources(foundation, "AWS::IAM::Role")["GlueJobRole"]
    [st] = [st for p in job_role["Policies"] for st in p["PolicyDocument"]["Statement"]
            if st["Sid"] == "RegisterPublishedPartitions"]
    assert st["Action"] == ["glue:GetTable", "glue:CreateTable", "glue:BatchCreatePartition"]
    assert [sub_text(r).rsplit(":", 1)[1] for r in st["Resource"]] == [
        "catalog", "database/${Project}_${Env}_*", "table/${Project}_${Env}_*/*"]


def test_each_dataset_has_failed_run_and_quarantine_ratio_alarms_and_a_dashboard(
        pipelines) -> None:
    from lib.lake import metrics

    alarms = resources(pipelines, "AWS::CloudWatch::Alarm")
    for dataset in job_versions():
        name = dataset.capitalize()
        failed = alarms[f"{name}FailedRunsAlarm"]
        assert (failed["MetricName"], failed["Threshold"], failed["Dimensions"]) == (
            metrics.RUNS_FAILED, 1, [{"Name": "Dataset", "Value": dataset}])
        ratio = alarms[f"{name}QuarantineRatioAlarm"]
        stats = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in ratio["Metrics"]
                 if "MetricStat" in m}
        assert stats == {"quarantined": metrics.ROWS_QUARANTINED, "read": metrics.ROWS_READ}
        assert ratio["Threshold"] == {"Ref": "QuarantineRatioThreshold"}
        for alarm in (failed, ratio):
            assert _imports(alarm["AlarmActions"]) == {"${Project}-${Env}-AlertTopicArn"}
    [dashboard] = resources(pipelines, "AWS::CloudWatch::Dashboard").values()
    body_text, variables = dashboard["DashboardBody"]["Fn::Sub"]
    body = json.loads(body_text)  # valid JSON before and (plain strings) after substitution
    shown = {m[1] for w in body["widgets"] for m in w["properties"]["metrics"]}
    assert {metrics.FILES_ACCEPTED, metrics.FILES_REJECTED, metrics.ROWS_READ,
            metrics.ROWS_CLEAN, metrics.ROWS_QUARANTINED, metrics.DUPLICATES_REMOVED,
            metrics.RUN_DURATION, metrics.RUNS_FAILED} <= shown
    assert sub_text(variables["Namespace"]) == METRICS_NAMESPACE


def test_every_environment_keeps_the_queue_visibility_above_six_validator_timeouts(
        foundation, uploads) -> None:
    """Lambda's guidance for SQS sources: a message stays invisible for at least six times
    the function's timeout, or a slow validation is handed to a second validator."""
    envs = sorted((REPO / "infra" / "env").glob("*.json"))
    assert [p.stem for p in envs] == ["dev", "prod"]
    for path in envs:
        cfg = json.loads(path.read_text())
        visibility = cfg.get("foundation", {}).get(
            "UploadVisibilityTimeoutSeconds",
            foundation["Parameters"]["UploadVisibilityTimeoutSeconds"]["Default"])
        timeout = cfg.get("uploads", {}).get(
            "ValidatorTimeoutSeconds", uploads["Parameters"]["ValidatorTimeoutSeconds"]["Default"])
        assert int(visibility) >= 6 * int(timeout), path.name
