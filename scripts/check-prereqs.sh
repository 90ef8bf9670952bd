#!/usr/bin/env bash
# Checks the only two things a fresh machine must bring: Python 3.11 and a Java 17 JDK
# (java runs Spark; javac builds the lake's commit protocol from jvm/).
# Prints the python interpreter to use on success.
set -euo pipefail

fail() { echo "error: $*" >&2; exit 1; }

py=""
for cand in "${PYTHON:-}" python3.11 python3; do
  [ -n "$cand" ] || continue
  if command -v "$cand" >/dev/null 2>&1 && \
     "$cand" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
    py="$cand"; break
  fi
done
[ -n "$py" ] || fail "Python 3.11 is required (the AWS Glue 5.0 runtime). Found: $(python3 --version 2>&1 || echo 'no python3'). Install Python 3.11 or set PYTHON=/path/to/python3.11."

if [ "${LAKE_SKIP_JAVA_CHECK:-}" != "1" ]; then
  # Spark launches $JAVA_HOME/bin/java when JAVA_HOME is set, else `java` on PATH: check that one.
  if [ -n "${JAVA_HOME:-}" ]; then
    java_bin="$JAVA_HOME/bin/java"; where="JAVA_HOME ($JAVA_HOME)"
    [ -x "$java_bin" ] || fail "JAVA_HOME is set to '$JAVA_HOME' but $java_bin does not exist. Point JAVA_HOME at a Java 17 install or unset it."
  else
    java_bin=java; where="PATH"
    command -v java >/dev/null 2>&1 || fail "Java 17 is required on PATH to run Spark 3.5.4 (the AWS Glue 5.0 engine), but 'java' was not found. Install OpenJDK 17 (e.g. 'apt-get install openjdk-17-jdk-headless') and retry."
  fi
  version_line=$("$java_bin" -version 2>&1 | head -n 1)
  major=$(printf '%s' "$version_line" | sed -E 's/.*version "([0-9]+)(\.[0-9]+)*.*/\1/')
  [ "$major" = "17" ] || fail "Java 17 is required (AWS Glue 5.0 runs Java 17), but the java on $where is: $version_line. Put a Java 17 'java' first on PATH, or set JAVA_HOME to a Java 17 install."
  javac_bin="${java_bin%java}javac"
  [ "$java_bin" = java ] && javac_bin=javac
  command -v "$javac_bin" >/dev/null 2>&1 || fail "a Java 17 JDK is required: 'javac' (next to the java on $where) builds the lake's commit protocol from jvm/, but it was not found. Install the JDK (e.g. 'apt-get install openjdk-17-jdk-headless') and retry."
fi
echo "$py"
