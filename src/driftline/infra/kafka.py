"""Apache Kafka in KRaft mode, run from the broker's own jars fetched from Maven Central.

No Docker and no Kafka package exist here, so Maven resolves
`org.apache.kafka:kafka_2.13` with its runtime dependencies into
`<infra_dir>/kafka/<version>/lib`, and `java kafka.Kafka` runs the broker with the
machine's Java 17. One node (broker + controller) by default; three nodes for
failover tests (replication factor 3, `min.insync.replicas=2`).
"""

from __future__ import annotations

import shutil
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from driftline.errors import InfraError
from driftline.infra.process import ServiceState, read_pid, run, spawn, stop_pid, wait_until

LOG4J2_VERSION = "2.24.3"

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.driftline</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: WARN
"""


@dataclass(frozen=True)
class KafkaNode:
    """One KRaft node: broker and controller in one JVM."""

    node_id: int
    broker_port: int
    controller_port: int
    home: Path  # data, config, pid and log of this node

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"


@dataclass(frozen=True)
class KafkaCluster:
    """The nodes `infra up` runs: `cluster` names a folder, so 1-node and 3-node coexist."""

    infra_dir: Path
    version: str
    base_port: int
    nodes_count: int = 1
    cache_dir: Path | None = None  # fetched jars; default `<infra_dir>/cache`

    @property
    def name(self) -> str:
        return "kafka" if self.nodes_count == 1 else f"kafka-{self.nodes_count}nodes"

    @property
    def lib_dir(self) -> Path:
        cache = self.cache_dir or self.infra_dir / "cache"
        return cache / f"kafka-{self.version}" / "lib"

    @property
    def home(self) -> Path:
        return self.infra_dir / self.name

    @property
    def nodes(self) -> list[KafkaNode]:
        return [
            KafkaNode(
                node_id=i + 1,
                broker_port=self.base_port + 2 * i,
                controller_port=self.base_port + 2 * i + 1,
                home=self.home / f"node-{i + 1}",
            )
            for i in range(self.nodes_count)
        ]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.broker_port}" for n in self.nodes)

    # -- fetch -------------------------------------------------------------------------

    def ensure_jars(self) -> None:
        """Fetch the broker and its runtime dependencies once (cached)."""
        marker = self.lib_dir / ".complete"
        if marker.exists():
            return
        if shutil.which("mvn") is None or shutil.which("java") is None:
            raise InfraError("Kafka needs `java` (17+) and `mvn` on PATH to fetch its jars")
        build = self.lib_dir.parent / "resolve"
        build.mkdir(parents=True, exist_ok=True)
        (build / "pom.xml").write_text(POM.format(version=self.version, log4j=LOG4J2_VERSION))
        run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(build / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={self.lib_dir}",
                "-DincludeScope=runtime",
            ],
            what=f"fetching Apache Kafka {self.version} from Maven Central",
        )
        marker.write_text(self.version)

    # -- configure and run -------------------------------------------------------------

    def properties(self, node: KafkaNode) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        rf = min(3, self.nodes_count)
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.broker_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(node.home / "data"),
            "num.partitions": "3",
            "default.replication.factor": str(rf),
            "min.insync.replicas": "2" if rf >= 3 else "1",
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": "2" if rf >= 3 else "1",
            "group.initial.rebalance.delay.ms": "0",
            # A restarted node cannot register again until its previous incarnation's
            # broker session has expired (DUPLICATE_BROKER_REGISTRATION): the default 9 s
            # made every restart 6 s longer, and let the groups' consumers' sessions run out.
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
            "auto.create.topics.enable": "true",
            "log.retention.hours": "168",
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": "2" if rf >= 3 else "1",
        }
        return "".join(f"{k}={v}\n" for k, v in lines.items())

    def _classpath(self) -> str:
        return f"{self.lib_dir}/*"

    def _format(self, node: KafkaNode, cluster_id: str) -> None:
        if (node.home / "data" / "meta.properties").exists():
            return
        run(
            [
                "java",
                "-cp",
                self._classpath(),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(node.home / "server.properties"),
                "--ignore-formatted",
            ],
            what=f"formatting Kafka storage of node {node.node_id}",
        )

    def _cluster_id(self) -> str:
        id_file = self.home / "cluster.id"
        if id_file.exists():
            return id_file.read_text().strip()
        out = run(
            ["java", "-cp", self._classpath(), "kafka.tools.StorageTool", "random-uuid"],
            what="generating a Kafka cluster id",
        )
        cluster_id = out.strip().splitlines()[-1].strip()
        id_file.write_text(cluster_id)
        return cluster_id

    def start(self, *, timeout_s: float = 90) -> None:
        """Start every node not already running, then wait until all answer."""
        self.ensure_jars()
        self.home.mkdir(parents=True, exist_ok=True)
        cluster_id = self._cluster_id()
        (self.home / "log4j2.yaml").write_text(LOG4J2)
        for node in self.nodes:
            if read_pid(node.pid_file) is not None:
                continue
            node.home.mkdir(parents=True, exist_ok=True)
            (node.home / "server.properties").write_text(self.properties(node))
            self._format(node, cluster_id)
            self.start_node(node)
        for node in self.nodes:
            wait_until(
                lambda node=node: node_ready(node),  # type: ignore[misc]
                timeout_s=timeout_s,
                what=f"Kafka node {node.node_id}",
                log_file=node.log_file,
                pid_file=node.pid_file,
            )

    def start_node(self, node: KafkaNode) -> None:
        if node.log_file.exists():  # one log per run, so readiness reads this run's lines
            node.log_file.replace(node.log_file.with_suffix(".log.1"))
        heap = "-Xmx512m" if self.nodes_count == 1 else "-Xmx384m"
        spawn(
            [
                "java",
                heap,
                "-Xms128m",
                "-XX:+UseG1GC",
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
                "-cp",
                self._classpath(),
                "kafka.Kafka",
                str(node.home / "server.properties"),
            ],
            log_file=node.log_file,
            pid_file=node.pid_file,
        )

    def stop(self) -> bool:
        stopped = False
        for node in reversed(self.nodes):
            stopped = stop_pid(node.pid_file, grace_s=30) or stopped
        return stopped

    def states(self) -> list[ServiceState]:
        return [
            ServiceState(
                name=self.name if self.nodes_count == 1 else f"{self.name}/{node.node_id}",
                address=f"127.0.0.1:{node.broker_port}",
                pid=read_pid(node.pid_file),
                healthy=broker_answers(node.broker_port),
            )
            for node in self.nodes
        ]


def api_versions(port: int, host: str = "127.0.0.1", timeout_s: float = 2.0) -> list[int]:
    """Send a Kafka ApiVersions (v0) request; returns the API keys the broker supports.

    Speaking the wire protocol proves a real Kafka broker listens, not just a socket.
    """
    client_id = b"driftline-infra"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        payload = _recv_exact(sock, size)
    correlation, error, count = struct.unpack(">ihi", payload[:10])
    if correlation != 1 or error != 0:
        raise InfraError(f"ApiVersions answered error {error}")
    return [struct.unpack(">hhh", payload[10 + 6 * i : 16 + 6 * i])[0] for i in range(count)]


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def node_ready(node: KafkaNode) -> bool:
    """Started (the broker logged it) and answering the wire protocol."""
    try:
        started = "Kafka Server started" in node.log_file.read_text(errors="replace")
    except OSError:
        return False
    return started and broker_answers(node.broker_port)


def broker_answers(port: int) -> bool:
    """True when the broker on `port` answers ApiVersions with Metadata (key 3) supported."""
    try:
        return 3 in api_versions(port)
    except (OSError, InfraError, struct.error):
        return False
