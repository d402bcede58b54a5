#!/usr/bin/env python3
"""A small client of telegen-probe's gRPC API in Python (grpcio).

    probe_client.py [--target T] info
    probe_client.py [--target T] start PORT [--direction ingress] [--seconds 60]
    probe_client.py [--target T] status JOB
    probe_client.py [--target T] results JOB
    probe_client.py [--target T] stop JOB

T is `unix:/run/telegen-sonic/probe.sock` (the default) or the probe's
loopback TCP listener, e.g. `127.0.0.1:50051` (TELEGEN_PROBE_LOCAL_TCP).

Needs `pip install grpcio grpcio-tools`: the stubs are generated from
proto/telegen/v1/probe.proto on each run (a tenth of a second).

Over a unix socket grpcio sends the socket's path as the HTTP/2
`:authority`, which the probe's HTTP/2 server refuses (RST_STREAM,
PROTOCOL_ERROR): the one setting is `grpc.default_authority`, as below.
Over TCP nothing needs setting. Either way the probe checks who is
calling (TELEGEN_PROBE_ALLOW): run this as root or in the socket's group.
"""

import argparse
import atexit
import importlib
import os
import shutil
import sys
import tempfile

import grpc
from grpc_tools import protoc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def stubs(proto_root):
    """telegen.v1 probe_pb2 and probe_pb2_grpc, generated into a temp dir."""
    out = tempfile.mkdtemp(prefix="telegen-pyproto-")
    # The modules are imported before main() returns; the directory is not
    # needed after exit.
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    rc = protoc.main([
        "protoc", f"-I{proto_root}", f"--python_out={out}", f"--grpc_python_out={out}",
        os.path.join(proto_root, "telegen", "v1", "probe.proto"),
    ])
    if rc != 0:
        sys.exit(f"protoc failed ({rc}) on {proto_root}")
    sys.path.insert(0, out)
    return (importlib.import_module("telegen.v1.probe_pb2"),
            importlib.import_module("telegen.v1.probe_pb2_grpc"))


def channel(target):
    options = []
    if target.startswith("unix:"):
        # The socket path is no valid :authority (see the module's doc).
        options.append(("grpc.default_authority", "localhost"))
    return grpc.insecure_channel(target, options=options)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", default=os.environ.get(
        "TELEGEN_PROBE_TARGET", "unix:/run/telegen-sonic/probe.sock"))
    ap.add_argument("--proto", default=PROTO_ROOT, help="the directory holding telegen/v1/probe.proto")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("info")
    start = sub.add_parser("start")
    start.add_argument("port")
    start.add_argument("--direction", default="ingress")
    start.add_argument("--seconds", type=int, default=60)
    for name in ("status", "results", "stop"):
        sub.add_parser(name).add_argument("job")
    args = ap.parse_args()

    pb, pb_grpc = stubs(args.proto)
    probe = pb_grpc.ProbeStub(channel(args.target))
    try:
        if args.cmd == "info":
            i = probe.GetInfo(pb.GetInfoRequest(), timeout=10)
            print(f"probe {i.version} kernel {i.kernel} datapath {str(i.datapath_enabled).lower()}")
        elif args.cmd == "start":
            j = probe.StartJob(pb.StartJobRequest(
                port=args.port, direction=args.direction, duration_sec=args.seconds), timeout=10)
            print(j.job_id)
        elif args.cmd == "status":
            print(probe.GetJob(pb.GetJobRequest(job_id=args.job), timeout=10).status)
        elif args.cmd == "results":
            r = probe.GetResults(pb.GetResultsRequest(job_id=args.job), timeout=10)
            print(f"packets {r.packets_total} bytes {r.bytes_total}")
        elif args.cmd == "stop":
            print(probe.StopJob(pb.StopJobRequest(job_id=args.job), timeout=10).status)
    except grpc.RpcError as e:
        sys.exit(f"ERROR: {e.code().name}: {e.details()}")


if __name__ == "__main__":
    main()
