#!/usr/bin/env sh
# Builds Gate's descriptor set for Envoy's grpc_json_transcoder: every file of proto/ plus
# the files they import (google/api/annotations.proto and http.proto carry the REST
# bindings), as a google.protobuf.FileDescriptorSet.
#
#   deploy/envoy/build-descriptors.sh [out-dir]     (default: deploy/envoy/descriptors)
#
# Envoy reads it from /etc/envoy/descriptors/gate.binpb (ENVOY_PROTO_DESCRIPTOR when
# generating envoy.yaml); mount the folder there. Not committed: rebuild it with the protos.
set -eu

out_dir="${1:-deploy/envoy/descriptors}"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
# buf.yaml at the repository root is the workspace that resolves the imports.
cd "$(dirname "$0")/../.."

# Source info is left out: Envoy never reads comments, and it triples the size. buf is run
# from node_modules directly: npx inside another `npm exec` (CI's Node 24 run) misreads the
# outer command's settings.
./node_modules/.bin/buf build proto \
  --as-file-descriptor-set \
  --exclude-source-info \
  -o "$out_dir/gate.binpb"
echo "wrote $out_dir/gate.binpb"
