#!/usr/bin/env bash
# Two "hosts" on this machine: network namespaces joined by a veth link, each with its own
# address and hostname (a UTS namespace), so MPI traffic between them crosses a real TCP
# stack and MPI sees two nodes (no shared window across them). mpirun starts in host A; its
# launch agent (plm_rsh_agent, in place of ssh) enters the namespace of the host it is given.
# usage: netns.sh HOSTS CMD ARGS...   HOSTS: mpirun's --host list over hA and hB, e.g. hA:2,hB:1
# Exits 77 with the reason without the privileges (CAP_NET_ADMIN, CAP_SYS_ADMIN) or tools.
set -uo pipefail
hosts=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found (apt-get install openmpi-bin)"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "SKIP: ip not found (apt-get install iproute2)"; exit 77; }
command -v unshare >/dev/null 2>&1 || { echo "SKIP: unshare not found (util-linux)"; exit 77; }
tag=lc$$
na=${tag}a nb=${tag}b
net=10.$((100 + $$ % 100)).$(($$ / 100 % 250)).
if ! ip netns add "$na" 2>/tmp/$tag.err; then
    echo "SKIP: cannot create a network namespace (needs CAP_NET_ADMIN and CAP_SYS_ADMIN): $(cat /tmp/$tag.err)"
    rm -f /tmp/$tag.err
    exit 77
fi
rm -f /tmp/$tag.err
work=$(mktemp -d)
cleanup() {
    ip netns del "$na" 2>/dev/null
    ip netns del "$nb" 2>/dev/null
    rm -rf "/etc/netns/$na" "/etc/netns/$nb" "$work"
}
trap cleanup EXIT
setup() {
    set -e
    ip netns add "$nb"
    ip link add "${tag}x" type veth peer name "${tag}y"
    ip link set "${tag}x" netns "$na"
    ip link set "${tag}y" netns "$nb"
    ip -n "$na" addr add "${net}1/24" dev "${tag}x"
    ip -n "$nb" addr add "${net}2/24" dev "${tag}y"
    for n in "$na" "$nb"; do ip -n "$n" link set lo up; done
    ip -n "$na" link set "${tag}x" up
    ip -n "$nb" link set "${tag}y" up
    ip netns exec "$na" unshare --uts true
}
if ! (setup) >"$work/setup.err" 2>&1; then
    echo "SKIP: cannot build two namespaces joined by a veth link with their own hostnames: $(cat "$work/setup.err")"
    exit 77
fi
set -e
# `ip netns exec` binds /etc/netns/NAME/hosts over /etc/hosts: the two names resolve there.
for n in "$na" "$nb"; do
    mkdir -p "/etc/netns/$n"
    printf '127.0.0.1 localhost\n%s1 hA\n%s2 hB\n' "$net" "$net" >"/etc/netns/$n/hosts"
done
# The launch agent, called as ssh would be: AGENT HOST COMMAND...
cat >"$work/agent" <<AGENT
#!/bin/sh
h=\$1; shift
case "\$h" in hA) n=$na ;; hB) n=$nb ;; *) echo "agent: unknown host \$h" >&2; exit 1 ;; esac
exec ip netns exec "\$n" unshare --uts sh -c "hostname \$h; \$*"
AGENT
chmod +x "$work/agent"
set +e
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_osc=sm,pt2pt OMPI_MCA_opal_common_ucx_opal_mem_hooks=0
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_plm_rsh_agent="$work/agent"
export LONGCTX_HEAP_SIZE=${LONGCTX_HEAP_SIZE:-256M} LONGCTX_TIMEOUT=${LONGCTX_TIMEOUT:-120}
# Sanitizer builds: keep OpenMPI's components loaded so leak stacks resolve, and suppress
# OpenMPI's own process-lifetime allocations (tests/mpi/lsan.supp).
export OMPI_MCA_mca_base_component_disable_dlclose=1
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(cd "$(dirname "$0")" && pwd)/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0}
fwd=()
for v in $(env | sed -n 's/^\(LONGCTX_[A-Z_]*\)=.*/\1/p'); do fwd+=(-x "$v"); done
ip netns exec "$na" unshare --uts sh -c 'hostname hA; exec "$@"' sh \
    mpirun --oversubscribe --bind-to none --host "$hosts" "${fwd[@]}" "$@"
