#!/usr/bin/env bash
# What `npm test` needs besides Node (run by its pretest, and by .ci/run): redis-server and
# redis-cli (Redis 7), openssl (test certificates), and for the cross-language tests protoc,
# grpc_python_plugin and a python3 with grpcio. As root on Debian, installs what is missing
# with apt-get; otherwise names it, with the command to run, and fails.
set -euo pipefail

python="${SYNCGEN_TEST_PYTHON:-/usr/bin/python3}"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
# The Cluster tests join their nodes with redis-cli --cluster create.
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v openssl >/dev/null || missing+=(openssl)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
command -v grpc_python_plugin >/dev/null || missing+=(protobuf-compiler-grpc)
"$python" -c "import grpc" 2>/dev/null || missing+=(python3-grpcio)
((${#missing[@]} == 0)) && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "npm test: installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "npm test needs these system packages (Debian names): ${missing[*]}" >&2
echo "install them, e.g.: sudo apt-get install ${missing[*]}" >&2
exit 1
