"""What publishing one upload costs on S3: the lake's write-once publish against an Iceberg
1.7.1 table (the table format Glue 5.0 supports natively), on the same rows, counted at a
local S3 endpoint (moto's server).

For each, two publishes of the same upload are measured: the first (new rows), then a
reprocess (the upload's rows replaced). The lake's is what a run does after its counts
(``lib.jobs.publish``: intent, the write through the commit protocol, the listing and the
footers, the journal, the deletes); Iceberg's is ``append`` then ``overwrite`` with a filter
on the upload, in a Hadoop catalog on the same bucket (on AWS the catalog is Glue's, whose
commit is an ``UpdateTable`` call instead of the metadata file's rename counted here).

    make bench-publish   # ROWS=200000 DAYS=30 by default; fetches the Iceberg jar once
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402

from lib.jobs.jars import Jar  # noqa: E402
from lib.tools.jars import fetch  # noqa: E402
from tests.aws_stubs import moto_server  # noqa: E402

ICEBERG = Jar("org.apache.iceberg", "iceberg-spark-runtime-3.5_2.12", "1.7.1",
              "cdf7357865d8d91764e0f147a2d76bc3e1e2b8792ddc0d3be329b3d34aaf218c")
BUCKET = "lake-bench"
KINDS = ("s3 puts", "bytes put", "parquet bytes put", "s3 copies", "bytes copied",
         "s3 deletes", "s3 heads", "s3 lists", "s3 gets")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--days", type=int, default=30, help="order_date partitions the rows span")
    ap.add_argument("--work-dir", type=Path, default=REPO / ".bench")
    args = ap.parse_args(argv)

    [iceberg_jar] = fetch(jars=(ICEBERG,), say=lambda line: print(line, flush=True))
    with moto_server() as (server, endpoint):
        os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                           "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        results = measure(server, iceberg_jar, args)
    print_table(results, args)
    return 0


def measure(server: ThreadedMotoServer, iceberg_jar: Path, args: argparse.Namespace) -> dict:
    from pyspark.sql import functions as F

    from lib.jobs import publish, spark_rows
    from lib.jobs.local_spark import local_spark_session
    from lib.lake.fs import HadoopFs
    from tests.aws_stubs import S3Requests

    # the Iceberg runtime on the driver's class path (local mode: the executors are in it too)
    os.environ["PYSPARK_SUBMIT_ARGS"] = f"--driver-class-path {iceberg_jar} pyspark-shell"
    spark = local_spark_session(args.work_dir / "publish-spark", app_name="publish-bench", s3=True)
    spark.conf.set("spark.sql.catalog.ice", "org.apache.iceberg.spark.SparkCatalog")
    spark.conf.set("spark.sql.catalog.ice.type", "hadoop")
    spark.conf.set("spark.sql.catalog.ice.warehouse", f"s3a://{BUCKET}/iceberg")

    def rows(uid: str):  # noqa: ANN202
        return (spark.range(args.rows, numPartitions=2)
                .select(F.lit(uid).alias("_upload_id"),
                        F.concat(F.lit("O-"), F.col("id").cast("string")).alias("order_id"),
                        (F.col("id") % 97).cast("int").alias("quantity"),
                        (F.col("id") % 1000 / 100).cast("decimal(12,2)").alias("unit_price"),
                        F.date_add(F.lit("2026-11-01").cast("date"),
                                   (F.col("id") % args.days).cast("int")).alias("order_date"))
                .repartition("_upload_id", "order_date"))

    fs = HadoopFs(spark)
    zone = f"s3://{BUCKET}/clean/orders"
    commits = f"s3://{BUCKET}/clean/_commits/orders"

    def lake_publish(uid: str, run_id: str) -> None:
        intent, journal = f"{commits}/{run_id}.intent.json", f"{commits}/{run_id}.json"
        publish.write_record(fs, intent, publish.intent_json(run_id, [uid]))
        spark_rows.write(rows(uid), zone, ("order_date",), run_id)
        plan = publish.PublishPlan("orders", run_id)
        publish.plan_upload(fs, plan, publish.zone_files(fs, zone, 1), zone, uid)
        publish.commit(fs, journal, plan)
        publish.apply(fs, plan)
        fs.delete(intent)
        fs.delete(journal)

    spark.sql("CREATE TABLE ice.db.orders (_upload_id string, order_id string, quantity int, "
              "unit_price decimal(12,2), order_date date) USING iceberg "
              "PARTITIONED BY (order_date) "
              # the lake's codec (Iceberg's default is zstd): the same Parquet bytes to compare
              "TBLPROPERTIES ('write.parquet.compression-codec' = 'snappy')")
    steps = {
        ("lake, write-once", "first publish"): lambda: lake_publish("u1", "R1"),
        ("lake, write-once", "reprocess"): lambda: lake_publish("u1", "R2"),
        ("Iceberg 1.7.1", "first publish"): lambda: rows("u1").writeTo("ice.db.orders").append(),
        ("Iceberg 1.7.1", "reprocess"):
            lambda: rows("u1").writeTo("ice.db.orders").overwrite(F.col("_upload_id") == "u1"),
    }
    results = {}
    for key, step in steps.items():
        rows("u1").count()  # the input computed before recording: only the publish is counted
        recording = S3Requests(server)
        step()
        results[key] = recording.stop()
        print(f"{key[0]:17} {key[1]:14} {json.dumps(results[key], sort_keys=True)}", flush=True)
    assert spark.table("ice.db.orders").count() == args.rows  # replaced, not added to
    spark.stop()
    return results


def print_table(results: dict, args: argparse.Namespace) -> None:
    print(f"\npublishing one upload of {args.rows:,} rows over {args.days} partitions on S3 "
          "(moto), requests and bytes at the endpoint\n")
    cols = list(results)
    print("| measure | " + " | ".join(f"{fmt}: {step}" for fmt, step in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for kind in KINDS:
        print(f"| {kind} | " + " | ".join(f"{results[c].get(kind, 0):,}" for c in cols) + " |")


if __name__ == "__main__":
    sys.exit(main())
