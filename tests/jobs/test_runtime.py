"""The runtime adapter: Glue-style arguments, and the same job context on Glue and locally."""

from __future__ import annotations

import sys
import types

import pytest

from lib.jobs.runtime import JobArgumentError, open_job, parse_job_args


def test_parses_glue_style_arguments_and_ignores_the_ones_glue_adds() -> None:
    argv = ["--JOB_NAME", "orders_v1", "--JOB_ID", "j_1", "--job-bookmark-option",
            "job-bookmark-disable", "--lake_root=s3://lake", "--TempDir", "s3://tmp/",
            "--enable-metrics"]
    assert parse_job_args(argv, ["lake_root"], {"input_paths": None, "mode": "fast"}) == {
        "JOB_NAME": "orders_v1", "lake_root": "s3://lake", "input_paths": None, "mode": "fast"}


def test_missing_arguments_are_named_with_what_was_given() -> None:
    with pytest.raises(JobArgumentError, match=r"^missing required job argument\(s\): "
                                               r"--JOB_NAME, --lake_root; given: --other$"):
        parse_job_args(["--other", "x"], ["lake_root"])


def test_positional_arguments_are_refused() -> None:
    with pytest.raises(JobArgumentError, match="unexpected argument 'orders'"):
        parse_job_args(["orders", "--JOB_NAME", "x"])


@pytest.fixture
def fake_glue(monkeypatch, spark):
    """Stand-ins for the awsglue modules, recording what the adapter does with them."""
    calls: list[tuple] = []

    class GlueContext:
        def __init__(self, sc):
            calls.append(("GlueContext", sc is spark.sparkContext))
            self.spark_session = spark

    class Job:
        def __init__(self, glue_context):
            self.glue_context = glue_context

        def init(self, name, args):
            calls.append(("init", name, args))

        def commit(self):
            calls.append(("commit",))

    pkg = types.ModuleType("awsglue")
    context = types.ModuleType("awsglue.context")
    context.GlueContext = GlueContext
    job = types.ModuleType("awsglue.job")
    job.Job = Job
    monkeypatch.setitem(sys.modules, "awsglue", pkg)
    monkeypatch.setitem(sys.modules, "awsglue.context", context)
    monkeypatch.setitem(sys.modules, "awsglue.job", job)
    monkeypatch.setenv("LAKE_RUNTIME", "glue")
    return calls


def test_on_glue_the_context_inits_and_commits_the_job(fake_glue, spark) -> None:
    with open_job(["--JOB_NAME", "orders_v1", "--lake_root", "s3://b"], ["lake_root"]) as ctx:
        assert ctx.runtime == "glue" and ctx.spark is spark and ctx.job_name == "orders_v1"
        assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert fake_glue == [("GlueContext", True),
                         ("init", "orders_v1", {"JOB_NAME": "orders_v1", "lake_root": "s3://b"}),
                         ("commit",)]


def test_on_glue_a_failing_job_is_not_committed(fake_glue) -> None:
    with pytest.raises(RuntimeError, match="boom"), \
            open_job(["--JOB_NAME", "j", "--lake_root", "s3://b"], ["lake_root"]):
        raise RuntimeError("boom")
    assert ("commit",) not in fake_glue


def test_locally_the_context_reuses_the_local_session(spark, monkeypatch) -> None:
    monkeypatch.setenv("LAKE_RUNTIME", "local")
    with open_job(["--JOB_NAME", "j"]) as ctx:
        assert ctx.runtime == "local" and ctx.spark is spark
        assert ctx.spark.conf.get("spark.sql.ansi.enabled") == "false"
