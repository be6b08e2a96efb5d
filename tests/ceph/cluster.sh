#!/usr/bin/env bash
# A throw-away single-node Ceph cluster on loopback for the test suite.
#
#   tests/ceph/cluster.sh start DIR   make and start a cluster in DIR (mon, mgr,
#                                     one memstore OSD, pool `rbd`, client.test
#                                     limited to it); prints DIR/env to source
#   tests/ceph/cluster.sh stop DIR    stop exactly the daemons of DIR
#
# Everything lives in DIR (conf, keyrings, data, sockets, pids, logs) and the
# mon listens on free ports, so a cluster someone else runs on this machine is
# left alone. Verified with Ceph 16 on Debian 12.
set -euo pipefail

cmd=${1:?usage: cluster.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: cluster.sh start|stop DIR}")

stop() {
    for pidfile in "$dir"/run/*.pid; do
        [ -e "$pidfile" ] || continue
        kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    for pidfile in "$dir"/run/*.pid; do
        [ -e "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi
[ "$cmd" = start ] || { echo "usage: cluster.sh start|stop DIR" >&2; exit 2; }

rm -rf "$dir"
mkdir -p "$dir"/{run,log,mon/a,mgr/x,osd/0}
chmod 0700 "$dir"
fsid=$(uuidgen)
v2=$(free_port)
v1=$(free_port)
conf=$dir/ceph.conf
cat > "$conf" <<EOF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$v2,v1:127.0.0.1:$v1]
public_network = 127.0.0.0/8
ms_bind_ipv6 = false
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_allow_pool_delete = true
auth_allow_insecure_global_id_reclaim = false
# The test machines' root filesystems run with 20-30 % free; the default
# warning (30 %) would keep the cluster from HEALTH_OK.
mon_data_avail_warn = 1
mon_data_avail_crit = 0
keyring = $dir/\$cluster.\$name.keyring
run_dir = $dir/run
admin_socket = $dir/run/\$cluster-\$name.asok
pid_file = $dir/run/\$name.pid
log_file = $dir/log/\$name.log
crash_dir = $dir/crash
[mon]
mon_data = $dir/mon/\$id
[mgr]
mgr_data = $dir/mgr/\$id
[osd]
osd_data = $dir/osd/\$id
osd_objectstore = memstore
memstore_device_bytes = 2147483648
osd_max_object_name_len = 256
osd_max_object_namespace_len = 64
EOF
export CEPH_CONF=$conf
ceph=(ceph --conf "$conf" --name client.admin --keyring "$dir/ceph.client.admin.keyring")

ceph-authtool --create-keyring "$dir/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$dir/ceph.client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
ceph-authtool "$dir/mon.keyring" --import-keyring "$dir/ceph.client.admin.keyring" >/dev/null
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$v2,v1:127.0.0.1:$v1]" "$dir/monmap" >/dev/null
ceph-mon --conf "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/mon.keyring" \
    >>"$dir/log/setup.log" 2>&1
cp "$dir/mon.keyring" "$dir/mon/a/keyring"
ceph-mon --conf "$conf" -i a >>"$dir/log/setup.log" 2>&1

"${ceph[@]}" auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' \
    -o "$dir/mgr/x/keyring"
ceph-mgr --conf "$conf" -i x --keyring "$dir/mgr/x/keyring" >>"$dir/log/setup.log" 2>&1

osd_uuid=$(uuidgen)
osd_id=$("${ceph[@]}" osd new "$osd_uuid")
ceph-authtool --create-keyring "$dir/osd/$osd_id/keyring" --gen-key -n "osd.$osd_id" >/dev/null
"${ceph[@]}" auth add "osd.$osd_id" osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' \
    -i "$dir/osd/$osd_id/keyring" >/dev/null 2>&1
ceph-osd --conf "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" --keyring "$dir/osd/$osd_id/keyring" \
    >/dev/null 2>&1
ceph-osd --conf "$conf" -i "$osd_id" --keyring "$dir/osd/$osd_id/keyring" >>"$dir/log/setup.log" 2>&1

"${ceph[@]}" osd pool create rbd 8 8 >/dev/null 2>&1
"${ceph[@]}" osd pool set rbd size 1 --yes-i-really-mean-it >/dev/null 2>&1
rbd --conf "$conf" --name client.admin --keyring "$dir/ceph.client.admin.keyring" pool init rbd
"${ceph[@]}" auth get-or-create client.test mon 'profile rbd' osd 'profile rbd pool=rbd' \
    -o "$dir/ceph.client.test.keyring"
chmod 0600 "$dir"/*.keyring

# HEALTH_OK comes before the PGs are active+clean: wait for both.
deadline=$((SECONDS + 120))
while [ "$SECONDS" -lt "$deadline" ]; do
    pgs=$("${ceph[@]}" pg stat 2>/dev/null || true)
    if [[ "$pgs" =~ ^([0-9]+)\ pgs:\ ([0-9]+)\ active\+clean ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] \
        && "${ceph[@]}" health 2>/dev/null | grep -q HEALTH_OK; then
        break
    fi
    sleep 0.2
done
if ! "${ceph[@]}" health 2>/dev/null | grep -q HEALTH_OK; then
    echo "cluster.sh: the cluster did not become healthy; logs in $dir/log" >&2
    "${ceph[@]}" -s >&2 || true
    exit 1
fi

cat > "$dir/env" <<EOF
CEPH_DIR=$dir
CEPH_CONF=$conf
CEPH_FSID=$fsid
CEPH_MON_HOST=127.0.0.1
CEPH_MON_PORT=$v1
CEPH_MON_PORT_V2=$v2
CEPH_POOL=rbd
CEPH_USER=test
CEPH_KEYRING=$dir/ceph.client.test.keyring
CEPH_ADMIN_KEYRING=$dir/ceph.client.admin.keyring
EOF
echo "$dir/env"
