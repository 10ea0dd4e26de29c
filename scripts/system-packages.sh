#!/usr/bin/env bash
# What `npm test` needs besides Node (run by its pretest, and by .ci/run): redis-server and
# redis-cli (Redis 7 or later), openssl (test certificates), curl (the HTTP port's recipes),
# chromium (the status page's browser test), and for the cross-language tests protoc,
# grpc_python_plugin, a python3 with grpcio, pip, setuptools, wheel and Django, and Go with
# its protoc plugins and the grpc-go and protobuf-go sources. As root on Debian, installs what is
# missing with apt-get, then checks again; otherwise (or with SYNCGEN_NO_INSTALL=1) names it,
# with the command to run, and fails.
set -euo pipefail

python="${SYNCGEN_TEST_PYTHON:-/usr/bin/python3}"
# Where Debian's golang-*-dev packages put Go sources (test/helpers/go.ts builds against it).
gocode="${SYNCGEN_TEST_GOCODE:-/usr/share/gocode}"

# Fills `missing` with the Debian packages of what is not there.
check() {
  missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  # The Cluster tests join their nodes with redis-cli --cluster create.
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  command -v "${SYNCGEN_TEST_CHROMIUM:-chromium}" >/dev/null || missing+=(chromium)
  command -v protoc >/dev/null || missing+=(protobuf-compiler)
  command -v grpc_python_plugin >/dev/null || missing+=(protobuf-compiler-grpc)
  "$python" -c "import grpc" 2>/dev/null || missing+=(python3-grpcio)
  # The Python client is installed with pip, offline, from Debian's build tools. One module
  # a process: pip imported before setuptools trips setuptools' distutils check.
  "$python" -c "import pip" 2>/dev/null || missing+=(python3-pip)
  "$python" -c "import setuptools" 2>/dev/null || missing+=(python3-setuptools)
  "$python" -c "import wheel" 2>/dev/null || missing+=(python3-wheel)
  # The djblets drop-in is tested in a real Django.
  "$python" -c "import django" 2>/dev/null || missing+=(python3-django)
  # The Go client: built offline in GOPATH mode against /usr/share/gocode. The APIv2-based
  # github.com/golang/protobuf (1.5) is named, or apt would pick the old 1.3 library.
  command -v go >/dev/null || missing+=(golang-go)
  command -v protoc-gen-go >/dev/null || missing+=(protoc-gen-go)
  command -v protoc-gen-go-grpc >/dev/null || missing+=(protoc-gen-go-grpc)
  [ -d "$gocode"/src/google.golang.org/grpc ] || missing+=(golang-google-grpc-dev)
  [ -d "$gocode"/src/google.golang.org/protobuf ] || missing+=(golang-google-protobuf-dev)
  grep -qs google.golang.org/protobuf "$gocode"/src/github.com/golang/protobuf/go.mod ||
    missing+=(golang-github-golang-protobuf-1-5-dev)
  # Sharded pub/sub (the Cluster store) came with Redis 7.
  if command -v redis-server >/dev/null; then
    major=$(redis-server --version | sed -n 's/.*v=\([0-9]*\)\..*/\1/p')
    if [ "${major:-0}" -lt 7 ]; then
      echo "npm test needs Redis 7 or later; redis-server here is ${major:-unknown}" >&2
      exit 1
    fi
  fi
}

check
((${#missing[@]} == 0)) && exit 0
if [ "${SYNCGEN_NO_INSTALL:-}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "npm test: installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  check
  ((${#missing[@]} == 0)) && exit 0
  echo "npm test: still missing after apt-get: ${missing[*]}" >&2
  exit 1
fi
echo "npm test needs these system packages (Debian names): ${missing[*]}" >&2
echo "install them, e.g.: sudo apt-get install ${missing[*]}" >&2
exit 1
