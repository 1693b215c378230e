"""The risky ports the network reachability check probes (pure data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PortSpec:
    port: int
    service: str
    category: str
    severity: float


RISKY_PORTS = (
    PortSpec(21, "FTP", "remote access", 5.0),
    PortSpec(22, "SSH", "remote shell", 4.0),
    PortSpec(23, "Telnet", "remote shell", 7.5),
    PortSpec(445, "SMB", "file sharing", 7.5),
    PortSpec(3389, "RDP", "remote desktop", 7.5),
    PortSpec(5900, "VNC", "remote desktop", 7.5),
    PortSpec(5985, "WinRM", "remote shell", 7.0),
    PortSpec(1433, "Microsoft SQL Server", "database", 7.0),
    PortSpec(1521, "Oracle", "database", 7.0),
    PortSpec(3306, "MySQL", "database", 7.0),
    PortSpec(5432, "PostgreSQL", "database", 7.0),
    PortSpec(27017, "MongoDB", "database", 8.0),
    PortSpec(9200, "Elasticsearch", "database", 8.0),
    PortSpec(5984, "CouchDB", "database", 7.0),
    PortSpec(6379, "Redis", "cache", 8.0),
    PortSpec(11211, "Memcached", "cache", 7.0),
    PortSpec(2375, "Docker API (plain)", "admin console", 9.8),
    PortSpec(2379, "etcd", "admin console", 8.0),
    PortSpec(10250, "Kubelet API", "admin console", 8.0),
    PortSpec(8500, "Consul", "admin console", 7.0),
    PortSpec(15672, "RabbitMQ management", "admin console", 6.0),
    PortSpec(4848, "GlassFish admin", "admin console", 7.0),
    PortSpec(7001, "WebLogic admin", "admin console", 7.0),
    PortSpec(8161, "ActiveMQ console", "admin console", 7.0),
)
KNOWN_PORTS = {p.port: p for p in RISKY_PORTS}


def port_spec(port: int) -> PortSpec:
    """The table's entry, or a generic one for a port configured by number only."""
    return KNOWN_PORTS.get(port, PortSpec(port, f"TCP service on port {port}", "unexpected", 5.0))
