"""docker/: no Docker engine runs here, so the container files are checked statically
against the templates, the pins, the repo and docs/operations.md."""

from __future__ import annotations

import re
import subprocess
import tomllib

import yaml

from lib.tools.infra import GLUE_VERSION, TEMPLATE_PATH, JobVersion, load_template
from tests.helpers import REPO

DOCKER = REPO / "docker"
WORKSPACE = "/home/hadoop/workspace"


def _compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]["glue"]


def test_the_image_is_the_public_glue_image_of_the_templates_glue_version() -> None:
    froms = [ln.split()[1] for ln in (DOCKER / "Dockerfile").read_text().splitlines()
             if ln.startswith("FROM ")]
    assert froms == ["public.ecr.aws/glue/aws-glue-libs:5"]
    image_major = froms[0].rsplit(":", 1)[1]
    jobs = [r["Properties"] for r in load_template(TEMPLATE_PATH)["Resources"].values()
            if r["Type"] == "AWS::Glue::Job"]
    assert jobs and {j["GlueVersion"] for j in jobs} == {GLUE_VERSION} == {f"{image_major}.0"}


def test_the_image_adds_the_projects_pins_and_leaves_the_glue_runtime_alone() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    pins = dict(d.split("==") for d in project["dependencies"] + extras["tools"] + extras["dev"])
    lock = dict(ln.split("==") for ln in (REPO / "requirements.lock").read_text().splitlines()
                if "==" in ln and not ln.startswith("#"))
    wanted = dict(ln.split("==") for ln in (DOCKER / "requirements.txt").read_text().splitlines()
                  if ln and not ln.startswith("#"))
    assert wanted == {"PyYAML": pins["PyYAML"], "sqlglot": pins["sqlglot"],
                      "duckdb": pins["duckdb"], "chispa": pins["chispa"], "pytest": pins["pytest"],
                      "moto[server]": pins["moto[server]"], "cfn-lint": lock["cfn-lint"]}
    assert not {"pyspark", "pandas", "numpy", "pyarrow", "boto3"} & set(wanted)


def test_compose_mounts_the_repo_as_the_images_workspace() -> None:
    glue = _compose()
    context = (DOCKER / glue["build"]["context"]).resolve()
    assert context == REPO
    assert (context / glue["build"]["dockerfile"]).is_file()
    mounts = [v.split(":") for v in glue["volumes"]]
    repo_mounts = [m for m in mounts if not m[0].startswith("${")]
    assert [((DOCKER / src).resolve(), dst) for src, dst, *_ in repo_mounts] == [(REPO, WORKSPACE)]
    assert glue["working_dir"] == WORKSPACE
    workdirs = [ln.split()[1] for ln in (DOCKER / "Dockerfile").read_text().splitlines()
                if ln.startswith("WORKDIR ")]
    assert workdirs == [WORKSPACE]
    assert glue["entrypoint"] == ["/bin/bash", "-lc"]


def test_the_make_targets_run_the_commands_the_docs_document() -> None:
    doc = (REPO / "docs" / "operations.md").read_text()
    section = doc.split("## The Glue 5 container", 1)[1].split("\n## ", 1)[0]
    documented = {ln for block in re.findall(r"```sh\n(.*?)```", section, re.S)
                  for ln in block.splitlines() if ln.startswith("docker compose")}
    ran = set()
    for target in (["docker-test"], ["docker-run", "JOB=orders/v2"]):
        out = subprocess.run(["make", "-n", *target], cwd=REPO, capture_output=True, text=True,
                             check=True)
        ran |= {ln for ln in out.stdout.splitlines() if ln.startswith("docker compose")}
    assert ran == documented == {
        'docker compose -f docker/compose.yaml build glue',
        'docker compose -f docker/compose.yaml run --rm glue "python3 -m pytest -p no:cacheprovider"',
        'docker compose -f docker/compose.yaml run --rm glue "docker/run-job.sh orders/v2"',
    }


def test_run_job_submits_the_packaged_script_with_lib_on_py_files_and_the_protocol_jar() -> None:
    script = DOCKER / "run-job.sh"
    assert script.stat().st_mode & 0o111, "run-job.sh must be executable"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert JobVersion("orders", 2).script_key == "jobs/orders/v2/job.py"  # what JOB= names
    assert "script=dist/jobs/$job/job.py" in text
    assert re.search(r'spark-submit --py-files "\$lib_zip" --jars "\$protocol_jar" "\$script"',
                     text)
    assert "lib_zip=$(ls dist/lib/*/lib.zip)" in text
    assert "protocol_jar=$(ls dist/lib/*/lake-spark.jar)" in text
