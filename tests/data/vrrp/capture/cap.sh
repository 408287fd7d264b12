#!/bin/bash
# usage: cap.sh NAME CONFBODY_FILE
# OUT=DIR (default /tmp/vcap) receives the pcap, logs and pid files.
set -u
NAME=$1; CONF=$2
NS=vrrpcap-$$
D=${OUT:-/tmp/vcap}/$NAME; rm -rf $D; mkdir -p $D
KPID=""; TPID=""
cleanup() {
  if [ -n "$KPID" ]; then
    for f in $D/vrrp.pid $D/main.pid; do [ -s $f ] && kill "$(cat $f)" 2>/dev/null; done
    sleep 1.5
    for f in $D/vrrp.pid $D/main.pid; do [ -s $f ] && kill -9 "$(cat $f)" 2>/dev/null; done
    kill -9 $KPID 2>/dev/null
  fi
  sleep 0.5
  [ -n "$TPID" ] && kill $TPID 2>/dev/null; sleep 0.3
  ip netns del $NS 2>/dev/null
}
trap cleanup EXIT
ip netns add $NS || exit 1
ip -n $NS link add vA type veth peer name vB
ip -n $NS addr add 192.0.2.1/24 dev vA
ip -n $NS addr add 192.0.2.2/24 dev vB
ip -n $NS link set lo up; ip -n $NS link set vA up; ip -n $NS link set vB up
ip netns exec $NS tcpdump -i vA -U -w $D/cap.pcap 'ip proto 112' >$D/tcpdump.log 2>&1 &
TPID=$!
sleep 1
cp $CONF $D/keepalived.conf
ip netns exec $NS keepalived -n -l -D -f $D/keepalived.conf -p $D/main.pid -r $D/vrrp.pid -c $D/chk.pid -b $D/bfd.pid >$D/keepalived.log 2>&1 &
KPID=$!
sleep ${CAPTIME:-5}
