#!/usr/bin/env bash
# Inside the Glue 5 container (make docker-run JOB=<dataset>/v<N>): land the dataset's
# samples in a container-local lake, then spark-submit the packaged job the way Glue runs
# it: the script from dist/jobs/, lib from the zip on --py-files (Glue's --extra-py-files),
# the commit protocol's jar on --jars (Glue's --extra-jars).
# The awsglue library is present, so the job takes its Glue path (GlueContext, Job.commit).
set -euo pipefail
job=${1:?usage: run-job.sh <dataset>/v<N>}
dataset=${job%%/*}
lake_root=${LAKE_ROOT:-/home/hadoop/workspace/.lake-docker}
script=dist/jobs/$job/job.py
[ -f "$script" ] || { echo "no packaged job $script: run make package (job names: dist/jobs/*/v*)" >&2; exit 2; }
lib_zip=$(ls dist/lib/*/lib.zip)
protocol_jar=$(ls dist/lib/*/lake-spark.jar)

PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" python3 -m lib.tools.cli --lake-root "$lake_root" \
  upload --dataset "$dataset" samples/"$dataset"/* || [ $? -eq 1 ]
exec spark-submit --py-files "$lib_zip" --jars "$protocol_jar" "$script" \
  --JOB_NAME "$dataset-${job##*/}" --lake_root "$lake_root"
