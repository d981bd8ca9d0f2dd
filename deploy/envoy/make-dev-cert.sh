#!/usr/bin/env sh
# Makes a self-signed TLS certificate and key for running the edge locally, valid for
# localhost, 127.0.0.1 and ::1 (and any extra names given). Requires openssl (1.1.1+).
#
#   deploy/envoy/make-dev-cert.sh [out-dir] [extra DNS name...]   (default: deploy/envoy/certs)
#
# Writes tls.crt and tls.key; mount the folder at /etc/envoy/certs. Never commit the key:
# deploy/envoy/.gitignore keeps certs/ out of git. Clients must trust tls.crt explicitly
# (curl --cacert, grpcurl -cacert, buf curl --cacert) or skip verification for local tests.
set -eu

out_dir="${1:-deploy/envoy/certs}"
[ "$#" -gt 0 ] && shift
command -v openssl >/dev/null 2>&1 || { echo "make-dev-cert: openssl is required" >&2; exit 1; }

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do san="$san,DNS:$name"; done

mkdir -p "$out_dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -days 365 -subj "/CN=gate-dev" \
  -addext "subjectAltName=$san" \
  -addext "extendedKeyUsage=serverAuth" \
  -keyout "$out_dir/tls.key" -out "$out_dir/tls.crt"
# The official Envoy image runs as uid 101, which reads the bind-mounted files as "other":
# a throwaway development key may be world-readable; a real key is provisioned otherwise.
chmod 644 "$out_dir/tls.crt" "$out_dir/tls.key"
echo "wrote $out_dir/tls.crt and $out_dir/tls.key (self-signed, 365 days, $san)"
