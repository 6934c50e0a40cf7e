#!/usr/bin/env bash
# The fleet test (.ci/run, after the main suite): deploy/ansible/site.yml with real Ansible over
# real SSH to three inventory hosts on this machine, as root.
#
#   hostA  127.0.0.2   an sshd of this test's own
#   hostC  127.0.0.4   nothing listens: unreachable, between A and B so that a failure that ended
#                      the play (serial: 1) would cost B its run
#   hostB  127.0.0.3   an sshd of this test's own
#
# The sshd instances listen on those loopback addresses only, with host keys and one client key
# generated into a temporary directory, public-key authentication only, root only; never the
# system service. A and B each get their own pinlat home and results directory; they share the
# machine's 2 CPUs, so they run one after the other (serial: 1), and each guest boot holds the
# boot lock (pinlat_boot_lock). A tiny config (one layout, one scenario, one workload, one
# repetition of 3 s, TCG) keeps the whole playbook to about two minutes (121 s on this 2-CPU
# machine at load average 6).
#
# Checks: the playbook ends on the merged verdict (hostC failed: merge exits 3), both hosts'
# results were fetched intact (byte for byte what the host wrote), and the merged report names
# hostA's and hostB's runs and hostC as failed.
#
# Everything it starts (sshd, and any pinlat still running on the "hosts") is stopped, and its
# temporary directory removed, on every exit path. Nothing is written outside it but the boot
# lock file, /run/sshd when missing (removed again) and the guest kernel cache of `pinlat run`.
#
#   scripts/test-ansible.sh                       # packs a --debug tarball first
#   PINLAT_TARBALL=target/dist/pinlat-....tar.gz scripts/test-ansible.sh   # a release one
#   PINLAT_TEST_KEEP=1 scripts/test-ansible.sh    # keep the temporary directory
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

if [ "$(id -u)" -ne 0 ]; then
    echo "test-ansible: run as root (the test's sshd accepts root, and pinlat run wants root)" >&2
    exit 2
fi
for tool in ansible-playbook ssh ssh-keygen /usr/sbin/sshd flock tar python3; do
    command -v "$tool" >/dev/null || {
        echo "test-ansible: $tool is missing: run scripts/setup.sh" >&2
        exit 3
    }
done

tmp=$(mktemp -d /tmp/pinlat-ansible.XXXXXX)
sshd_pids=()
playbook_pid=
made_run_sshd=false
# stop_group PGID: TERM to a process group this script started, KILL after 5 s; never waits
# longer.
stop_group() {
    kill -TERM -- "-$1" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 -- "-$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$1" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    # ansible-playbook leads its own process group (setsid): it and its workers.
    [ -z "$playbook_pid" ] || stop_group "$playbook_pid"
    # pinlat (and its QEMU) started on the hosts carry PINLAT_FLEET_TEST=$tmp (pinlat_env):
    # an asynchronous run outlives its SSH session, so stop those by their ids.
    local pids=() p
    for p in /proc/[0-9]*; do
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "PINLAT_FLEET_TEST=$tmp"; then
            pids+=("${p#/proc/}")
        fi
    done
    if [ ${#pids[@]} -gt 0 ]; then
        echo "test-ansible: stopping ${#pids[@]} process(es) left on the hosts: ${pids[*]}" >&2
        kill -TERM "${pids[@]}" 2>/dev/null || true
        for _ in $(seq 50); do
            local alive=()
            for p in "${pids[@]}"; do
                ! kill -0 "$p" 2>/dev/null || alive+=("$p")
            done
            [ ${#alive[@]} -gt 0 ] || break
            sleep 0.2
        done
        for p in "${alive[@]}"; do
            kill -KILL "$p" 2>/dev/null || true
        done
    fi
    # Each sshd leads its own process group (setsid): the listener and its connections.
    for p in "${sshd_pids[@]}"; do
        stop_group "$p"
    done
    if $made_run_sshd; then
        rmdir /run/sshd 2>/dev/null || true
    fi
    if [ "${PINLAT_TEST_KEEP:-0}" = 1 ]; then
        echo "test-ansible: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "test-ansible: FAIL: $*" >&2
    exit 1
}

# --- the release ---------------------------------------------------------------------------
tarball=${PINLAT_TARBALL:-}
if [ -z "$tarball" ]; then
    # The dev-profile runner the test suite has just built: a cold release build of the runner
    # would add minutes on a 2-CPU CI machine, and the packaging and the playbook are the same.
    tarball=$(scripts/release-tarball.sh --debug --out "$tmp/dist")
fi
tarball=$(realpath "$tarball")
[ -f "$tarball.sha256" ] || fail "$tarball.sha256 is missing"
# pinlat merge runs on the controller: the same release, unpacked here.
mkdir "$tmp/controller"
tar -C "$tmp/controller" -xzf "$tarball"
merge_bin=$(echo "$tmp"/controller/*/bin/pinlat)
[ -x "$merge_bin" ] || fail "no bin/pinlat in $tarball"

# --- sshd on 127.0.0.2 and 127.0.0.3 -------------------------------------------------------
ssh_dir=$tmp/ssh
mkdir -m 0700 "$ssh_dir"
ssh-keygen -q -t ed25519 -N '' -C pinlat-test-host -f "$ssh_dir/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C pinlat-test-client -f "$ssh_dir/id_ed25519"
cp "$ssh_dir/id_ed25519.pub" "$ssh_dir/authorized_keys"
if [ ! -d /run/sshd ]; then
    mkdir -m 0755 /run/sshd
    made_run_sshd=true
fi

listening() { # ADDR PORT: something accepts connections there
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
port=
for p in $(seq 22022 22041); do
    if ! listening 127.0.0.2 "$p" && ! listening 127.0.0.3 "$p" && ! listening 127.0.0.4 "$p"; then
        port=$p
        break
    fi
done
[ -n "$port" ] || fail "no free port in 22022-22041 on 127.0.0.2-4"

start_sshd() { # NAME ADDR
    local conf=$ssh_dir/sshd-$1.conf
    cat >"$conf" <<EOF
ListenAddress $2:$port
HostKey $ssh_dir/host_ed25519
PidFile none
AuthorizedKeysFile $ssh_dir/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
UsePAM no
# The keys live under /tmp, which is world-writable: StrictModes would refuse them.
StrictModes no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PermitTunnel no
PrintMotd no
Subsystem sftp internal-sftp
EOF
    /usr/sbin/sshd -t -f "$conf" || fail "sshd refuses $conf"
    setsid /usr/sbin/sshd -D -e -f "$conf" 2>"$ssh_dir/sshd-$1.log" &
    sshd_pids+=("$!")
    for _ in $(seq 50); do
        listening "$2" "$port" && break
        sleep 0.1
    done
    listening "$2" "$port" || fail "sshd for $1 does not listen on $2:$port ($(cat "$ssh_dir/sshd-$1.log"))"
    echo "[$2]:$port $(cut -d' ' -f1-2 "$ssh_dir/host_ed25519.pub")" >>"$ssh_dir/known_hosts"
}
start_sshd hostA 127.0.0.2
start_sshd hostB 127.0.0.3
# Only loopback: every socket of our sshd processes is on 127.0.0.2 or 127.0.0.3.
for p in "${sshd_pids[@]}"; do
    if ss -Hltnp | grep "pid=$p," | awk '{print $4}' | grep -v -E "^127\.0\.0\.[23]:$port$"; then
        fail "sshd $p listens beyond 127.0.0.2/3:$port"
    fi
done

# --- Ansible, kept inside $tmp ---------------------------------------------------------------
a=$tmp/ansible
mkdir -p "$a/home" "$a/local-tmp" "$a/remote-tmp" "$a/async" "$a/cp"
cat >"$a/ansible.cfg" <<EOF
[defaults]
home = $a/home
local_tmp = $a/local-tmp
remote_tmp = $a/remote-tmp
async_dir = $a/async
remote_user = root
private_key_file = $ssh_dir/id_ed25519
timeout = 5
retry_files_enabled = false
localhost_warning = false
interpreter_python = /usr/bin/python3

[ssh_connection]
control_path_dir = $a/cp
# No ControlPersist master outliving the playbook; no ~/.ssh/config, no known_hosts but ours.
ssh_args = -F /dev/null -o ControlMaster=no -o UserKnownHostsFile=$ssh_dir/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes
pipelining = true
EOF
export ANSIBLE_CONFIG=$a/ansible.cfg

# The hosts share this machine's guest kernel cache, as they share its CPUs (one download).
cache_home=${XDG_CACHE_HOME:-$HOME/.cache}
cat >"$tmp/hosts.yml" <<EOF
pinlat:
  hosts:
    hostA:
      ansible_host: 127.0.0.2
      pinlat_home: $tmp/hostA/pinlat
      pinlat_results_dir: $tmp/hostA/results
    hostC:
      ansible_host: 127.0.0.4
      pinlat_home: $tmp/hostC/pinlat
      pinlat_results_dir: $tmp/hostC/results
    hostB:
      ansible_host: 127.0.0.3
      pinlat_home: $tmp/hostB/pinlat
      pinlat_results_dir: $tmp/hostB/results
  vars:
    ansible_port: $port
    pinlat_cache_home: $cache_home
    pinlat_accel: tcg
    pinlat_duration: 3s
    pinlat_repetitions: 1
    pinlat_doctor_args: [--no-kvm-probe]
    pinlat_boot_lock: /tmp/pinlat-boot.lock
    pinlat_env:
      PINLAT_FLEET_TEST: $tmp
EOF
# A template: the host's CPUs come from its facts. The overrides above (3 s, 1 repetition,
# TCG) must win over the config's values.
cat >"$tmp/fleet.toml.j2" <<'EOF'
[run]
duration_s = 20
repetitions = 3
accel = "auto"
interval_ms = 1000
boot_timeout_s = 60

[host]
cpus = "0-{{ ansible_processor_vcpus - 1 }}"

[[guests]]
name = "rt"
vcpus = 2
memory_mib = 256
realtime_mask = "^0"

[[layouts]]
kind = "vcpu0"

[[scenarios]]
kind = "idle"

[[workloads]]
kind = "busy-poll"
preheat_ms = 200
EOF

session=test-$(date -u +%Y%m%dT%H%M%SZ)
echo "== ansible-playbook --syntax-check"
ansible-playbook -i "$tmp/hosts.yml" deploy/ansible/site.yml --syntax-check >/dev/null
if command -v ansible-lint >/dev/null; then
    echo "== ansible-lint"
    # Its caches go under $tmp, not ~/.cache and ~/.ansible.
    (cd deploy/ansible && HOME=$tmp/lint-home XDG_CACHE_HOME=$tmp/lint-home/.cache NO_COLOR=1 \
        ansible-lint -q -p site.yml roles/pinlat)
fi

echo "== ansible-playbook (session $session; log: $tmp/playbook.log)"
start=$(date +%s)
# In the background, so that a signal to this script reaches the trap at once (bash runs traps
# only between commands), in a process group of its own, which the cleanup stops.
setsid ansible-playbook -i "$tmp/hosts.yml" deploy/ansible/site.yml \
    -e "pinlat_tarball=$tarball" -e "pinlat_config=$tmp/fleet.toml.j2" \
    -e "pinlat_fetch_dir=$tmp/fetched" -e "pinlat_session=$session" \
    -e "pinlat_merge_bin=$merge_bin" -e pinlat_serial=1 \
    >"$tmp/playbook.log" 2>&1 &
playbook_pid=$!
# Progress while it runs: each play and task as it starts, the waits for pinlat run and what
# failed (tail ends with the playbook).
tail -n +1 -f --pid="$playbook_pid" "$tmp/playbook.log" |
    grep --line-buffered -E '^(PLAY|TASK) \[|^fatal:|RETRYING' |
    sed -u -E 's/ \*+$//; s/^/  /' &
progress_pid=$!
rc=0
wait "$playbook_pid" || rc=$?
playbook_pid=
wait "$progress_pid" || true
echo "playbook: exit $rc after $(($(date +%s) - start)) s"
grep -E '^(PLAY RECAP|host[ABC]|localhost) ' "$tmp/playbook.log" | sed 's/^/  /' || true

# --- what must hold ------------------------------------------------------------------------
show_log() { sed 's/^/  | /' "$tmp/playbook.log" | tail -n 80 >&2; }
# hostC failed, so the merge exits 3 and the playbook fails on that verdict, last.
if [ "$rc" -ne 2 ] || ! grep -q 'pinlat merge exited 3' "$tmp/playbook.log"; then
    show_log
    fail "expected the playbook to stop on 'pinlat merge exited 3' (hostC unreachable), got exit $rc"
fi
grep -q 'hostC: FAILED: unreachable' "$tmp/playbook.log" || { show_log; fail "hostC not reported as unreachable"; }
merged=$tmp/fetched/merged/$session
for h in hostA hostB; do
    host_dir=$tmp/$h/results/$session
    got=$tmp/fetched/$h/$session
    [ -d "$got" ] || { show_log; fail "$h: nothing fetched into $got"; }
    # Intact: every file the host wrote, byte for byte (the fetched side adds doctor.log and run.log).
    differ=$(diff -r "$host_dir" "$got" | grep -v -x -E "Only in $got: (doctor|run)\.log" || true)
    [ -z "$differ" ] || fail "$h: fetched results differ from the host's: $differ"
    [ -f "$got/doctor.json" ] || fail "$h: no doctor.json"
    [ -f "$got/run.log" ] || fail "$h: no run.log"
done
[ ! -e "$tmp/fetched/hostC/$session" ] || fail "hostC has fetched results"
python3 - "$tmp/fetched" "$session" "$merged" <<'EOF' || fail "results or merged report wrong (above)"
import glob, json, os, sys
fetched, session, merged = sys.argv[1:]
ok = True
def check(cond, what):
    global ok
    print(("  ok    " if cond else "  FAIL  ") + what)
    ok = ok and cond
runs = {}
for h in ("hostA", "hostB"):
    plans = glob.glob(f"{fetched}/{h}/{session}/*/plan.json")
    check(len(plans) == 1, f"{h}: one results directory")
    if len(plans) != 1:
        continue
    d = os.path.dirname(plans[0])
    recs = [json.load(open(p)) for p in sorted(glob.glob(f"{d}/runs/*.json"))]
    check(len(recs) == 1, f"{h}: one run ({[r.get('name') for r in recs]})")
    for r in recs:
        check(r["status"]["status"] == "ok", f"{h}: {r['name']} measured ({r['status']})")
        check(r["duration_ms"] == 3000, f"{h}: --duration 3s applied ({r['duration_ms']} ms)")
        check(r["accel"] == "tcg", f"{h}: --accel tcg applied ({r['accel']})")
        runs[h] = r["name"]
    doctor = json.load(open(f"{fetched}/{h}/{session}/doctor.json"))
    check(len(doctor.get("checks", [])) > 0, f"{h}: doctor.json has {len(doctor.get('checks', []))} checks")
for f in ("report.md", "report.html", "report.json", "junit.xml"):
    check(os.path.isfile(f"{merged}/{f}"), f"merged {f}")
read = lambda f: open(f"{merged}/{f}").read() if os.path.isfile(f"{merged}/{f}") else ""
md, junit = read("report.md"), read("junit.xml")
rep = json.loads(read("report.json") or "{}")
hosts = {h["label"]: h for h in rep.get("hosts", [])}
check(sorted(hosts) == ["hostA", "hostB"], f"merged hosts are hostA and hostB ({sorted(hosts)})")
for h, name in runs.items():
    m = hosts.get(h, {})
    got = os.path.basename(m.get("dir", "").rstrip("/"))
    check(m.get("run_id") == got and got != "", f"merged {h} is its fetched run {got}")
    check(m.get("runs", {}).get("ok") == 1 and m.get("runs", {}).get("failed") == 0,
          f"merged {h}: 1 run measured, none failed ({m.get('runs')})")
    groups = [(g["layout"], g["scenario"], g["workload"], g["ok_runs"]) for g in m.get("groups", [])]
    check(groups == [tuple(name.split(".")[:3]) + (1,)], f"merged {h} shows {name} ({groups})")
    check(f"| {h} | measured" in md, f"report.md: {h}'s row in the hosts x layouts matrix")
check("## idle × busy-poll" in md, "report.md: the idle × busy-poll section")
failed = {f["label"]: f["reason"] for f in rep.get("failed_hosts", [])}
check(list(failed) == ["hostC"] and failed["hostC"].startswith("unreachable: "),
      f"merged failed hosts: hostC, unreachable ({failed})")
check("❌ hostC" in md and "unreachable: " in md, "report.md: hostC failed, with its reason")
check("hostC" in junit and "host-failed" in junit, "junit.xml: hostC as host-failed")
sys.exit(0 if ok else 1)
EOF
echo "test-ansible: ok ($(($(date +%s) - start)) s for the playbook and checks)"
