#!/usr/bin/env python3
"""Runs one `reconcile ... engine: lake` statement on Apache Spark (pyspark, local mode) over a Synapse Link
export copied to a local folder, with each table loaded as Databricks Lakeflow Connect lands it.

    lake-spark.py EXPORT_DIR SQL_FILE OUT_FILE SAMPLE

EXPORT_DIR holds the export's layout as the container holds it: `<yyyy-MM-ddTHH.mm.ssZ>/model.json`,
`<folder>/<table>/*.csv` (headerless) and `Changelog/changelog.info` (the folder still being written, never
read). Each table: every record of every closed folder (columns named by that folder's own model.json, so a
column added later is null before it), one row per `Id` (the highest `versionnumber`; a tie goes to the later
folder), a row whose latest record is an `IsDelete` one removed, the columns of the newest folder's
model.json. Every column is a string (an empty field null), as the simulator's warehouse holds them.

SQL_FILE is the statement the console generates (its `:sample` marker bound to SAMPLE). OUT_FILE gets one
JSON array per result row, each cell a string or null, as the Statement Execution API returns them. Timings
go to stdout as `spark-load-seconds=` and `spark-statement-seconds=`. Nothing here takes a secret.
"""

import json
import os
import re
import sys
import time

FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}Z$")


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    export_dir, sql_file, out_file, sample = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(sql_file, encoding="utf-8") as f:
        sql = f.read()

    open_folder = None
    info = os.path.join(export_dir, "Changelog", "changelog.info")
    if os.path.exists(info):
        with open(info, encoding="utf-8") as f:
            open_folder = f.read().strip() or None
    folders = sorted(d for d in os.listdir(export_dir) if FOLDER.match(d) and d != open_folder)
    if not folders:
        sys.exit(f"{export_dir}: no closed export folder")

    # table -> [(folder, [attribute names], [csv paths])]
    parts = {}
    newest = {}
    for folder in folders:
        with open(os.path.join(export_dir, folder, "model.json"), encoding="utf-8") as f:
            model = json.load(f)
        for entity in model.get("entities", []):
            name = entity["name"]
            attrs = [a["name"] for a in entity.get("attributes", [])]
            newest[name] = attrs
            table_dir = os.path.join(export_dir, folder, name)
            if not os.path.isdir(table_dir):
                continue
            csvs = sorted(
                os.path.join(table_dir, c) for c in os.listdir(table_dir) if c.endswith(".csv")
            )
            if csvs:
                parts.setdefault(name, []).append((folder, attrs, csvs))

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession, Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    started = time.monotonic()
    spark = (
        SparkSession.builder.master(os.environ.get("CUTOVER_SPARK_MASTER", "local[2]"))
        .appName("cutover-lake-reconcile")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", os.environ.get("CUTOVER_SPARK_PARTITIONS", "8"))
        .config("spark.driver.memory", os.environ.get("CUTOVER_SPARK_MEMORY", "2g"))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    for table, pieces in parts.items():
        frames = []
        for folder, attrs, csvs in pieces:
            schema = StructType([StructField(a, StringType(), True) for a in attrs])
            df = (
                spark.read.schema(schema)
                .option("header", "false")
                .option("multiLine", "true")
                .option("quote", '"')
                .option("escape", '"')
                .option("mode", "FAILFAST")
                .csv(csvs)
                .withColumn("_folder", F.lit(folder))
            )
            frames.append(df)
        df = frames[0]
        for other in frames[1:]:
            df = df.unionByName(other, allowMissingColumns=True)
        latest = Window.partitionBy("Id").orderBy(
            F.col("versionnumber").cast("long").desc_nulls_last(), F.col("_folder").desc()
        )
        df = (
            df.withColumn("_rn", F.row_number().over(latest))
            .where("_rn = 1")
            .where(F.coalesce(F.lower(F.col("IsDelete")), F.lit("")) != "true")
        )
        cols = newest[table]
        df = df.select(
            *[
                (F.when(F.col(c) == "", None).otherwise(F.col(c)) if c in df.columns else F.lit(None).cast("string")).alias(c)
                for c in cols
            ]
        )
        df.cache().count()
        df.createOrReplaceTempView(table)
    loaded = time.monotonic()

    rows = spark.sql(sql, args={"sample": sample}).collect()
    done = time.monotonic()
    with open(out_file, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps([None if v is None else str(v) for v in r]) + "\n")
    print(f"spark-load-seconds={loaded - started:.2f}", flush=True)
    print(f"spark-statement-seconds={done - loaded:.2f}", flush=True)
    print(f"spark-rows={len(rows)}", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
