"""What a new user reads on a first run: `lake upload` of both sample datasets, then `lake
pipeline` (both Spark jobs and the crawl), as processes of their own. Valid input gives no
Java stack trace, no exception and no ERROR or WARN line from Spark on the terminal: Spark's
own log goes to a file, which the output names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO

# A Java stack frame, a chained cause, or a log4j line of Spark's at WARN or above.
NOISE = re.compile(r"^\s+at [\w$.]+\(|Caused by:|Exception|^\S+ (ERROR|WARN) \w+: ")


def _lake(lake: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lib.tools.cli", "--lake-root", str(lake),
                           *args], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=900)


def test_a_first_run_of_both_sample_datasets_prints_no_java_trace_and_names_sparks_log(
        tmp_path) -> None:
    lake = tmp_path / "lake"
    env = {k: v for k, v in os.environ.items() if k != "LAKE_SPARK_DIR"}
    outputs = []
    for dataset in ("orders", "customers"):
        files = sorted(str(p) for p in (REPO / "samples" / dataset).iterdir())
        up = _lake(lake, "upload", "--dataset", dataset, *files, env=env)
        assert up.returncode in (0, 1), up.stderr  # 1: a sample is rejected on purpose
        outputs.append(up.stdout + up.stderr)
    pipeline = _lake(lake, "pipeline", env=env)
    assert pipeline.returncode == 0, pipeline.stderr[-3000:]
    outputs.append(pipeline.stdout + pipeline.stderr)
    text = "\n".join(outputs)
    noise = [line for line in text.splitlines() if NOISE.search(line)]
    assert noise == [], "\n".join(noise[:20])
    log = lake / "_local" / "spark" / "spark.log"
    assert f"Spark's own warnings and errors go to {log}" in pipeline.stderr
    assert log.is_file()
    assert "customers_v1" in pipeline.stderr and "orders_v2" in pipeline.stderr
