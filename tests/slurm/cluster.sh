#!/usr/bin/env bash
# A throwaway single-node SLURM cluster with accounting (slurmdbd + MariaDB) and two fake
# GPUs, for tests. Needs root and apt (Debian). Everything it starts is recorded by PID
# under $STATE and stopped by `cluster.sh stop`.
#
#   tests/slurm/cluster.sh install   # apt-get the packages if missing
#   tests/slurm/cluster.sh start     # write configs, start munge, mariadb, slurmdbd, slurmctld, slurmd
#   tests/slurm/cluster.sh stop      # kill every daemon it started, by PID, in reverse order
#
# Notes from getting this to work here (see shared docs, snakemake.md section 3):
# - configs must be at /etc/slurm: the executor's job step strips SLURM_CONF;
# - a GPU gres needs a File= or slurmd drops it (we point at /dev/null and /dev/zero);
# - DefMemPerCPU keeps a job without --mem from taking the whole node.
set -euo pipefail
STATE=${SLURM_TEST_STATE:-/tmp/nextlat-slurm}
H=$(hostname -s)
N=$(nproc)
PIDS="run/slurmd.pid run/slurmctld.pid run/slurmdbd.pid mysqlrun/mariadb.pid run/munged.pid"

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  for _ in $(seq $((limit * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "cluster.sh: timed out after ${limit}s waiting for $what" >&2
  return 1
}

install() {
  if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null; then
    return 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge slurmdbd mariadb-server >/dev/null
}

start() {
  stop  # leftovers of an earlier run that was not stopped
  mkdir -p "$STATE"/{state,spool,log,run} /etc/slurm
  cat > /etc/slurm/slurm.conf <<EOF
ClusterName=nextlattest
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
MinJobAge=600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$H
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
GresTypes=gpu
NodeName=$H CPUs=$N Sockets=1 CoresPerSocket=$N ThreadsPerCore=1 RealMemory=8000 Gres=gpu:fake:2 State=UNKNOWN
PartitionName=main Nodes=$H Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$H Default=NO MaxTime=INFINITE State=UP
EOF
  printf 'NodeName=%s Name=gpu Type=fake File=/dev/null\nNodeName=%s Name=gpu Type=fake File=/dev/zero\n' "$H" "$H" \
    > /etc/slurm/gres.conf

  [ -s /etc/munge/munge.key ] || mungekey --create
  mkdir -p /run/munge && chown munge:munge /run/munge
  su -s /bin/sh munge -c /usr/sbin/munged
  cp /run/munge/munged.pid "$STATE/run/munged.pid"

  mkdir -p "$STATE/mysql" "$STATE/mysqlrun" && chown mysql:mysql "$STATE/mysql" "$STATE/mysqlrun"
  [ -d "$STATE/mysql/mysql" ] || mariadb-install-db --user=mysql --datadir="$STATE/mysql" \
      --auth-root-authentication-method=socket >/dev/null
  setsid nohup mariadbd --user=mysql --datadir="$STATE/mysql" --socket="$STATE/mysqlrun/mysqld.sock" \
    --bind-address=127.0.0.1 --port=3306 --pid-file="$STATE/mysqlrun/mariadb.pid" \
    --log-error="$STATE/mysqlrun/mariadb.err" >/dev/null 2>&1 </dev/null &
  wait_for 60 mariadb mariadb -S "$STATE/mysqlrun/mysqld.sock" -uroot -e 'select 1'
  mariadb -S "$STATE/mysqlrun/mysqld.sock" -uroot -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=$H
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
  /usr/sbin/slurmdbd
  wait_for 60 slurmdbd sacctmgr -n list cluster
  sacctmgr -i add cluster nextlattest >/dev/null || true
  sacctmgr -i add account testacc Description=test Organization=test >/dev/null || true
  sacctmgr -i add user root Account=testacc DefaultAccount=testacc >/dev/null || true

  /usr/sbin/slurmctld
  /usr/sbin/slurmd
  wait_for 60 "an idle node" sh -c 'sinfo -h -o %T | grep -qx idle'
}

stop() {
  for f in $PIDS; do
    if [ -s "$STATE/$f" ]; then kill "$(cat "$STATE/$f")" 2>/dev/null || true; fi
  done
  for f in $PIDS; do  # give each a moment, then make sure
    for _ in $(seq 40); do
      [ -s "$STATE/$f" ] && kill -0 "$(cat "$STATE/$f")" 2>/dev/null || break
      sleep 0.25
    done
    if [ -s "$STATE/$f" ] && kill -0 "$(cat "$STATE/$f")" 2>/dev/null; then kill -9 "$(cat "$STATE/$f")" || true; fi
  done
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
