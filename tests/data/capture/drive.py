#!/usr/bin/env python3
"""tandem: the workload recorded into tests/data/vectors (run through capture.py, see README.md).

One session with the DataStax Python driver (cassandra-driver; lz4 and python-snappy for those
compressions) against TDM_CAPTURE_HOST:TDM_CAPTURE_PORT, pinned to that one address, doing:
OPTIONS/STARTUP (the driver's handshake), CREATE KEYSPACE, CREATE TABLE, INSERT (one small, one with a
large compressible value), SELECT, PREPARE + EXECUTE, a BATCH, and a bad query (a syntax error).

  drive.py --protocol 4|5|3 --compression none|lz4|snappy [--user U --password P]
"""
import argparse
import os
import sys

from cassandra import ProtocolVersion
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster, ExecutionProfile, EXEC_PROFILE_DEFAULT
from cassandra.policies import WhiteListRoundRobinPolicy
from cassandra.query import BatchStatement, SimpleStatement

KS = "tandem_capture"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", type=int, required=True, choices=(3, 4, 5))
    ap.add_argument("--compression", default="none", choices=("none", "lz4", "snappy"))
    ap.add_argument("--user")
    ap.add_argument("--password")
    a = ap.parse_args()
    host = os.environ.get("TDM_CAPTURE_HOST", "127.0.0.1")
    port = int(os.environ.get("TDM_CAPTURE_PORT", "9042"))

    profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]), request_timeout=30)
    kw = {}
    if a.user:
        kw["auth_provider"] = PlainTextAuthProvider(username=a.user, password=a.password)
    cluster = Cluster(
        contact_points=[host], port=port,
        protocol_version=a.protocol,
        allow_beta_protocol_version=False,
        compression=False if a.compression == "none" else a.compression,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        schema_metadata_enabled=False, token_metadata_enabled=False,
        connect_timeout=20, control_connection_timeout=20, idle_heartbeat_interval=0, **kw)
    session = cluster.connect()
    try:
        session.execute("CREATE KEYSPACE IF NOT EXISTS %s WITH replication = "
                        "{'class': 'SimpleStrategy', 'replication_factor': 1}" % KS)
        session.execute("CREATE TABLE IF NOT EXISTS %s.kv (k int PRIMARY KEY, v text)" % KS)
        session.execute("INSERT INTO %s.kv (k, v) VALUES (1, 'one')" % KS)
        session.execute("INSERT INTO %s.kv (k, v) VALUES (2, '%s')" % (KS, "compressible " * 200))
        rows = list(session.execute("SELECT k, v FROM %s.kv WHERE k IN (1, 2)" % KS))
        assert len(rows) == 2, rows
        ins = session.prepare("INSERT INTO %s.kv (k, v) VALUES (?, ?)" % KS)
        session.execute(ins, (3, "three"))
        batch = BatchStatement()
        batch.add(ins, (4, "four"))
        batch.add(SimpleStatement("INSERT INTO %s.kv (k, v) VALUES (5, 'five')" % KS))
        session.execute(batch)
        try:
            session.execute("SELEC k FROM %s.kv" % KS)
            print("drive: the bad query did not fail", file=sys.stderr)
            return 1
        except Exception as e:  # SyntaxException: the ERROR frame is what we want on the wire
            print("drive: expected error: %s" % type(e).__name__)
        if cluster.protocol_version != a.protocol:
            print("drive: negotiated v%d, wanted v%d" % (cluster.protocol_version, a.protocol), file=sys.stderr)
            return 1
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
