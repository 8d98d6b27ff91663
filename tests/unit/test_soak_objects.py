"""The soak reads the bucket's object count from MinIO's metrics, never by listing it."""

from __future__ import annotations

from bench.soak.sampling import object_count

METRICS = """# HELP minio_bucket_usage_object_total Total number of objects
# TYPE minio_bucket_usage_object_total gauge
minio_bucket_usage_object_total{bucket="other",server="127.0.0.1:9000"} 7
minio_bucket_usage_object_total{bucket="soak-1",server="127.0.0.1:9000"} 1.234e+06
minio_bucket_usage_total_bytes{bucket="soak-1",server="127.0.0.1:9000"} 3.3e+09
"""


def test_object_count_of_one_bucket_from_minio_metrics() -> None:
    assert object_count(METRICS, "soak-1") == 1_234_000
    assert object_count(METRICS, "other") == 7
    assert object_count(METRICS, "never-scanned") is None
