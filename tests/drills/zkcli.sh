#!/usr/bin/env bash
# Debian's ZooKeeper command-line client (zkCli) in batch mode: commands on stdin, one per line.
#   zkcli.sh HOST:PORT < commands
set -euo pipefail
{ cat; echo quit; } | exec java -Xmx128m -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-nop.jar \
  org.apache.zookeeper.ZooKeeperMain -server "$1"
