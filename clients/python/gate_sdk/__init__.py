"""Gate's Python SDK: stubs generated from proto/ by `buf generate --template buf.gen.python.yaml`.

protoc's Python output imports other generated files by their proto path
(`from gate.clients.v1 import clients_service_pb2`, `from google.api import annotations_pb2`),
and offers no option to prefix those imports. Importing this package puts its own folder on
sys.path, after everything else, so those imports resolve while installed packages
(grpc, google.protobuf) still win.

Usage:
    import gate_sdk  # noqa: F401 (sets up the import path)
    from gate.clients.v1 import clients_service_pb2 as clients_pb
    from gate.clients.v1 import clients_service_pb2_grpc as clients_grpc
    from grpc.health.v1 import health_pb2, health_pb2_grpc
"""

import os
import sys

import grpc

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.append(_HERE)

# `grpc` is a regular package, so grpc/health/v1 here cannot be found through sys.path;
# Debian's python3-grpcio has no grpc_health package. Extend grpc's own search path instead
# (an installed grpcio-health-checking, earlier on that path, still wins).
_GRPC_EXTRA = os.path.join(_HERE, "grpc")
if _GRPC_EXTRA not in grpc.__path__:
    grpc.__path__.append(_GRPC_EXTRA)

# google.protobuf is a namespace package in current protobuf releases, so google/api here
# joins it without help.
