"""An isolated set of services (`--home`, `--port-offset`), and `infra down` stopping
whatever `up` started there, whatever its Kafka node count."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bench.processes import all_processes
from driftline.cli.main import app
from driftline.infra.manager import LocalServices, free_port_offset
from driftline.settings import load_settings


def _running_from(home: Path) -> list[str]:
    """Command lines of the processes whose command line names `home` (JVMs, MinIO)."""
    return [p.cmdline for p in all_processes() if str(home) in p.cmdline]


def test_down_stops_every_kafka_cluster_up_started(tmp_path: Path) -> None:
    home = tmp_path / "services"
    offset = free_port_offset(load_settings())
    where = ["--home", str(home), "--port-offset", str(offset)]
    runner = CliRunner()
    try:
        for nodes in ("1", "3"):
            up = runner.invoke(
                app, ["infra", "up", "--only", "kafka", "--kafka-nodes", nodes, *where]
            )
            assert up.exit_code == 0, up.output
        up = runner.invoke(app, ["infra", "up", "--only", "minio", *where])
        assert up.exit_code == 0, up.output
        assert len([c for c in _running_from(home) if "kafka.Kafka" in c]) == 4
        status = runner.invoke(app, ["infra", "status", *where])
        assert "kafka-3nodes/3" in status.output, "status lists every running cluster"

        down = runner.invoke(app, ["infra", "down", *where])

        assert down.exit_code == 0, down.output
        assert "kafka-3nodes" in down.output
        assert _running_from(home) == [], "no JVM or MinIO of the set survives `down`"
    finally:
        isolated = LocalServices.isolated(load_settings(), home, offset)
        isolated.down(["kafka", "minio"], every_cluster=True)


def test_isolated_set_shares_only_the_cache() -> None:
    base = load_settings()
    isolated = LocalServices.isolated(base, Path("/srv/chaos"), 500, kafka_nodes=3)
    assert isolated.kafka.lib_dir == LocalServices(base).kafka.lib_dir
    assert isolated.minio.binary == LocalServices(base).minio.binary
    assert isolated.kafka.home == Path("/srv/chaos/kafka-3nodes")
    client = isolated.client_settings()
    assert client.kafka_bootstrap_servers.split(",")[0] == f"127.0.0.1:{base.kafka_port + 600}"
    assert client.database_url.endswith(f":{base.postgres_port + 500}/driftline")
    assert client.s3_endpoint_url == f"http://127.0.0.1:{base.minio_port + 500}"
    assert client.topic_replication_factor == 3
