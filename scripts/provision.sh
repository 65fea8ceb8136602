#!/usr/bin/env bash
# Builds the servers Sluice's integration tests start, into a cache that is
# kept between runs:
#   kafka     Kafka 3.9.x broker jars, resolved by test/harness/kafka/pom.xml
#             (needs java 11+ and mvn; Maven's own cache is ~/.m2)
#   ferretdb  FerretDB v1 built from test/harness/ferretdb (needs go 1.24+;
#             Go's module and build caches are the defaults)
#   registry  Apicurio Registry 2.6 (its Confluent-compatible API is the schema
#             registry of the audit tests), the distribution Maven Central holds
#             (needs java 17+ and mvn)
#
# Usage: scripts/provision.sh [kafka] [ferretdb] [registry]     (no argument: all)
#
# Idempotent: a finished artefact has a stamp with the hash of its inputs, and
# is skipped when the stamp matches. Safe to run concurrently (flock).
#
# Progress goes to stderr. Stdout gets one line per artefact, for the harness:
#   SLUICE_KAFKA_LIBS=<dir of jars>
#   SLUICE_FERRETDB_BIN=<binary>
#   SLUICE_REGISTRY_JAR=<runner jar>
# PostgreSQL is not built here: it comes from Debian's postgresql package.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${SLUICE_CACHE:-${HOME:-/root}/.cache/sluice}"
KAFKA_POM="$ROOT/test/harness/kafka/pom.xml"
FERRET_SRC="$ROOT/test/harness/ferretdb"

log() { printf 'provision: %s\n' "$*" >&2; }
die() { printf 'provision: %s\n' "$*" >&2; exit 1; }

want_kafka=0
want_ferretdb=0
want_registry=0
if [ "$#" -eq 0 ]; then
  want_kafka=1
  want_ferretdb=1
  want_registry=1
fi
for arg in "$@"; do
  case "$arg" in
    kafka) want_kafka=1 ;;
    ferretdb) want_ferretdb=1 ;;
    registry) want_registry=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (expected: kafka, ferretdb, registry)" ;;
  esac
done

mkdir -p "$CACHE"

# One provision at a time per cache; a second caller waits, then finds the
# stamps and skips.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.provision.lock"
  flock 9
fi

hash_files() { cat "$@" | sha256sum | cut -d' ' -f1; }

stamp_ok() { # stamp_file expected_hash
  [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]
}

need_java_and_maven() {
  command -v java >/dev/null 2>&1 ||
    die "java not found: install Debian package openjdk-17-jre-headless"
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found: install Debian package maven"
}

provision_kafka() {
  local version
  version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM")"
  [ -n "$version" ] || die "no <kafka.version> in $KAFKA_POM"
  local dir="$CACHE/kafka-$version"
  local libs="$dir/libs"
  local hash
  hash="$(hash_files "$KAFKA_POM")"

  if stamp_ok "$dir/.stamp" "$hash" && [ -f "$libs/kafka_2.13-$version.jar" ]; then
    log "kafka $version: cached in $libs"
  else
    need_java_and_maven
    local jv
    jv="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
    if [ -n "$jv" ] && [ "$jv" -lt 11 ]; then
      die "java $jv is too old for Kafka $version: install Debian package openjdk-17-jre-headless"
    fi

    log "kafka $version: resolving jars with Maven into $libs"
    local t0=$SECONDS
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp/libs"
    # copy-dependencies resolves the runtime closure of kafka_2.13 plus the
    # reload4j logging jars; ~/.m2 keeps the downloads.
    # (sed: Maven 3.8 prints colour resets even in batch mode)
    mvn -B -q --no-transfer-progress -Dstyle.color=never -f "$KAFKA_POM" \
      dependency:copy-dependencies -DoutputDirectory="$dir.tmp/libs" 2>&1 |
      sed 's/\x1b\[[0-9;]*m//g' >&2 ||
      die "mvn failed to resolve Kafka $version jars (see the output above)"
    [ -f "$dir.tmp/libs/kafka_2.13-$version.jar" ] ||
      die "mvn ran but kafka_2.13-$version.jar is not in $dir.tmp/libs"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    printf '%s\n' "$hash" >"$dir/.stamp"
    log "kafka $version: $(ls "$libs" | wc -l) jars in $((SECONDS - t0))s"
  fi
  printf 'SLUICE_KAFKA_LIBS=%s\n' "$libs"
}

provision_ferretdb() {
  local version
  version="$(sed -n 's:^require github.com/FerretDB/FerretDB \(v[^ ]*\).*:\1:p; s:^[[:space:]]*github.com/FerretDB/FerretDB \(v[^ ]*\)$:\1:p' "$FERRET_SRC/go.mod" | head -1)"
  [ -n "$version" ] || die "no github.com/FerretDB/FerretDB requirement in $FERRET_SRC/go.mod"
  local dir="$CACHE/ferretdb-$version"
  local bin="$dir/sluice-ferretdb"
  local hash
  hash="$(hash_files "$FERRET_SRC/go.mod" "$FERRET_SRC/go.sum" "$FERRET_SRC/main.go")"

  if stamp_ok "$dir/.stamp" "$hash" && [ -x "$bin" ]; then
    log "ferretdb $version: cached at $bin"
  else
    command -v go >/dev/null 2>&1 ||
      die "go not found: install Go 1.24 or newer and put its bin directory on PATH"
    local gv major minor
    gv="$(go env GOVERSION 2>/dev/null || true)"
    major="$(printf '%s' "$gv" | sed -n 's/^go\([0-9]*\)\.\([0-9]*\).*/\1/p')"
    minor="$(printf '%s' "$gv" | sed -n 's/^go\([0-9]*\)\.\([0-9]*\).*/\2/p')"
    if [ -z "$major" ] || [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt 24 ]; }; then
      die "go ${gv:-of unknown version} is too old: FerretDB $version needs Go 1.24 or newer"
    fi

    log "ferretdb $version: building $bin with $gv (a cold build takes a few minutes)"
    local t0=$SECONDS
    mkdir -p "$dir"
    # GOTOOLCHAIN=local: never download another toolchain.
    (cd "$FERRET_SRC" &&
      GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -trimpath -buildvcs=false \
        -o "$bin.tmp" .) >&2 ||
      die "go build of FerretDB $version failed (see the output above)"
    mv "$bin.tmp" "$bin"
    printf '%s\n' "$hash" >"$dir/.stamp"
    log "ferretdb $version: built in $((SECONDS - t0))s"
  fi
  printf 'SLUICE_FERRETDB_BIN=%s\n' "$bin"
}

REGISTRY_VERSION=2.6.13.Final

provision_registry() {
  local dir="$CACHE/apicurio-registry-$REGISTRY_VERSION"
  local jar="$dir/apicurio-registry-app-$REGISTRY_VERSION-runner.jar"
  local artifact="io.apicurio:apicurio-registry-app:$REGISTRY_VERSION:tar.gz:all"

  if stamp_ok "$dir/.stamp" "$artifact" && [ -f "$jar" ]; then
    log "registry $REGISTRY_VERSION: cached at $jar"
  else
    need_java_and_maven
    log "registry $REGISTRY_VERSION: fetching $artifact with Maven"
    local t0=$SECONDS
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    # dependency:copy needs a project only to run in; the Kafka pom is at hand.
    mvn -B -q --no-transfer-progress -Dstyle.color=never -f "$KAFKA_POM" \
      dependency:copy -Dartifact="$artifact" -DoutputDirectory="$dir.tmp" 2>&1 |
      sed 's/\x1b\[[0-9;]*m//g' >&2 ||
      die "mvn failed to fetch $artifact (see the output above)"
    tar xzf "$dir.tmp/apicurio-registry-app-$REGISTRY_VERSION-all.tar.gz" -C "$dir.tmp" ||
      die "could not unpack $artifact"
    rm "$dir.tmp/apicurio-registry-app-$REGISTRY_VERSION-all.tar.gz"
    [ -f "$dir.tmp/$(basename "$jar")" ] || die "$artifact holds no $(basename "$jar")"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
    printf '%s\n' "$artifact" >"$dir/.stamp"
    log "registry $REGISTRY_VERSION: ready in $((SECONDS - t0))s"
  fi
  printf 'SLUICE_REGISTRY_JAR=%s\n' "$jar"
}

if [ "$want_kafka" = 1 ]; then provision_kafka; fi
if [ "$want_ferretdb" = 1 ]; then provision_ferretdb; fi
if [ "$want_registry" = 1 ]; then provision_registry; fi
