#!/bin/bash
# usage: interop.sh NAME CONF HI_HEX ZERO_HEX INTERVAL COUNT
# OUT=DIR (default /tmp/vcap) receives the pcap, logs and pid files.
set -u
NAME=$1; CONF=$2; HI=$3; ZERO=$4; IV=$5; CNT=$6
N1=vrrpio1-$$; N2=vrrpio2-$$
D=${OUT:-/tmp/vcap}/io-$NAME; rm -rf $D; mkdir -p $D
KPID=""
cleanup() {
  if [ -n "$KPID" ]; then
    for f in $D/vrrp.pid $D/main.pid; do [ -s $f ] && kill "$(cat $f)" 2>/dev/null; done
    sleep 1.5
    for f in $D/vrrp.pid $D/main.pid; do [ -s $f ] && kill -9 "$(cat $f)" 2>/dev/null; done
    kill -9 $KPID 2>/dev/null
  fi
  ip netns del $N1 2>/dev/null; ip netns del $N2 2>/dev/null
}
trap cleanup EXIT
ip netns add $N1 || exit 1; ip netns add $N2 || exit 1
ip -n $N1 link add vA type veth peer name vB netns $N2
ip -n $N1 addr add 192.0.2.1/24 dev vA; ip -n $N2 addr add 192.0.2.2/24 dev vB
ip -n $N1 link set lo up; ip -n $N1 link set vA up; ip -n $N2 link set lo up; ip -n $N2 link set vB up
cp $CONF $D/keepalived.conf
ip netns exec $N1 keepalived -n -l -D -f $D/keepalived.conf -p $D/main.pid -r $D/vrrp.pid -c $D/chk.pid -b $D/bfd.pid >$D/keepalived.log 2>&1 &
KPID=$!
sleep 0.3
echo "$(date +%T.%N) sending higher priority" >> $D/events
ip netns exec $N2 python3 "$(dirname "$0")"/send.py $HI $CNT $IV
echo "$(date +%T.%N) sending priority 0" >> $D/events
ip netns exec $N2 python3 "$(dirname "$0")"/send.py $ZERO 1 0
sleep 2
