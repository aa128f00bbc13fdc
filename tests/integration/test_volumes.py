"""Volumes and mounts through the real CLI, in real mount namespaces: binds, named and anonymous volumes, image
VOLUME copy-up, tmpfs, symlink escapes, rm -v, prune, concurrent creates, events."""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures.images import Dir, File, Symlink, busybox_config, busybox_rootfs
from tests.integration.helpers import Cli


@pytest.fixture
def bb(cli, busybox_image) -> str:
    cli("pull", "-q", busybox_image, check=True)
    return busybox_image


def _run(cli: Cli, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return cli("run", *args, check=check)


def _volume_names(cli: Cli, *filters: str) -> list[str]:
    args = ["volume", "ls", "-q"]
    for f in filters:
        args += ["--filter", f]
    return cli(*args, check=True).stdout.split()


def _image_with(oci_builder, name: str, entries: list, volumes: list[str]) -> str:
    config = busybox_config()
    config["config"]["Volumes"] = {v: {} for v in volumes}
    ref, _layout = oci_builder.push(f"voltest/{name}:v1", [busybox_rootfs(), entries], config)
    return ref


# --- bind mounts -------------------------------------------------------------------------------------------


def test_bind_mount_read_write_and_read_only(cli, bb, tmp_path):
    host = tmp_path / "share"
    host.mkdir()
    (host / "in.txt").write_text("from host\n")
    run = _run(cli, "--rm", "-v", f"{host}:/share", bb, "sh", "-c", "cat /share/in.txt; echo back > /share/out.txt")
    assert run.stdout == "from host\n"
    assert (host / "out.txt").read_text() == "back\n"

    ro = _run(cli, "--rm", "-v", f"{host}:/share:ro", bb, "sh", "-c", "echo no > /share/nope", check=False)
    assert ro.returncode != 0 and "Read-only file system" in ro.stderr
    assert not (host / "nope").exists()

    mounted = _run(cli, "--rm", "--mount", f"type=bind,source={host},target=/m,readonly", bb,
                   "sh", "-c", "grep ' /m ' /proc/self/mounts").stdout
    assert " ro," in mounted


def test_read_only_bind_is_recursive(cli, bb, tmp_path):
    host = tmp_path / "outer"
    (host / "inner").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(host / "inner")], check=True)
    try:
        ro = _run(cli, "--rm", "-v", f"{host}:/o:ro", bb, "sh", "-c", "touch /o/inner/x", check=False)
        assert ro.returncode != 0 and "Read-only file system" in ro.stderr
        assert not (host / "inner" / "x").exists()
    finally:
        subprocess.run(["umount", str(host / "inner")], check=True)


def test_file_bind_and_missing_host_dir(cli, bb, tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("key=1\n")
    assert _run(cli, "--rm", "-v", f"{conf}:/etc/app/app.conf:ro", bb, "cat", "/etc/app/app.conf").stdout == "key=1\n"
    # -v creates a missing host directory (Docker's legacy rule); --mount refuses it.
    missing = tmp_path / "made-by-v"
    _run(cli, "--rm", "-v", f"{missing}:/x", bb, "true")
    assert missing.is_dir()
    refused = _run(cli, "--rm", "--mount", f"type=bind,src={tmp_path}/absent,dst=/x", bb, "true", check=False)
    assert refused.returncode == 125
    assert "bind source path does not exist" in refused.stderr


def test_invalid_mount_specs_exit_125(cli, bb):
    for args in (["-v", "a/b:/x"], ["-v", "x:/"], ["-v", "vol:relative"], ["--mount", "type=nfs,target=/x"],
                 ["-v", "v1:/same", "-v", "v2:/same"], ["--tmpfs", "/t:bogus"], ["-v", "/tmp:/x:rx"]):
        proc = _run(cli, "--rm", *args, bb, "true", check=False)
        assert proc.returncode == 125, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _volume_names(cli) == []  # nothing created on the way


# --- named volumes -----------------------------------------------------------------------------------------


def test_named_volume_persists_and_is_protected_while_used(cli, bb):
    _run(cli, "--name", "writer", "-v", "appdata:/data", bb, "sh", "-c", "echo kept > /data/f")
    assert _run(cli, "--rm", "-v", "appdata:/d", bb, "cat", "/d/f").stdout == "kept\n"
    info = json.loads(cli("volume", "inspect", "appdata", check=True).stdout)[0]
    assert info["Mountpoint"] == os.path.join(cli.root, "volumes", "appdata", "_data")
    assert (info["Driver"], info["Scope"], info["Name"]) == ("local", "local", "appdata")
    with open(os.path.join(info["Mountpoint"], "f")) as f:
        assert f.read() == "kept\n"

    writer_id = cli("inspect", "-f", "{{.Id}}", "writer", check=True).stdout.strip()
    refused = cli("volume", "rm", "appdata")
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"Error response from daemon: remove appdata: volume is in use - [{writer_id}]"
    assert _volume_names(cli, "dangling=true") == []
    cli("rm", "-v", "writer", check=True)  # -v never removes a named volume
    assert _volume_names(cli, "dangling=true") == ["appdata"]
    assert cli("volume", "rm", "appdata", check=True).stdout == "appdata\n"
    assert not os.path.exists(info["Mountpoint"])


def test_inspect_mounts_has_dockers_shape(cli, bb, tmp_path):
    _run(cli, "--name", "mnt", "-v", f"{tmp_path}:/b:ro", "-v", "named:/n", "--tmpfs", "/t", bb, "true")
    mounts = json.loads(cli("inspect", "-f", "{{json .Mounts}}", "mnt", check=True).stdout)
    by_dest = {m["Destination"]: m for m in mounts}
    assert by_dest["/b"] == {"Type": "bind", "Source": str(tmp_path), "Destination": "/b", "Mode": "ro",
                             "RW": False, "Propagation": "rprivate"}
    assert by_dest["/n"] == {"Type": "volume", "Name": "named", "Destination": "/n", "Driver": "local",
                             "Mode": "z", "RW": True, "Propagation": "",
                             "Source": os.path.join(cli.root, "volumes", "named", "_data")}
    assert by_dest["/t"]["Type"] == "tmpfs"
    cli("rm", "mnt", check=True)


def test_volume_cli_create_ls_filters_format(cli):
    assert cli("volume", "create", "--label", "tier=db", "--label", "env", "vol-a", check=True).stdout == "vol-a\n"
    assert cli("volume", "create", "--name", "vol-b", check=True).stdout == "vol-b\n"
    anon = cli("volume", "create", check=True).stdout.strip()
    assert len(anon) == 64
    assert cli("volume", "create", "vol-a", check=True).stdout == "vol-a\n"  # existing: returned as it is
    table = cli("volume", "ls", check=True).stdout.splitlines()
    assert table[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert [line.split() for line in table[1:]] == [["local", anon], ["local", "vol-a"], ["local", "vol-b"]]
    assert _volume_names(cli, "label=tier=db") == ["vol-a"]
    assert _volume_names(cli, "label=env") == ["vol-a"]
    assert _volume_names(cli, "name=vol-") == ["vol-a", "vol-b"]
    assert _volume_names(cli, "dangling=false") == []
    assert cli("volume", "ls", "--format", "{{.Name}} {{.Labels}}", "-f", "name=vol-a", check=True).stdout == \
        "vol-a env=,tier=db\n"
    rows = [json.loads(line) for line in cli("volume", "ls", "--format", "json", check=True).stdout.splitlines()]
    assert {r["Name"] for r in rows} == {anon, "vol-a", "vol-b"} and rows[0]["Driver"] == "local"
    labels = json.loads(cli("volume", "inspect", "-f", "{{json .Labels}}", anon, check=True).stdout)
    assert labels == {"com.docker.volume.anonymous": ""}
    assert cli("volume", "inspect", "-f", "{{.Name}}", "vol-b", check=True).stdout == "vol-b\n"

    missing = cli("volume", "inspect", "nope")
    assert (missing.returncode, missing.stderr.strip()) == (1, "Error: No such volume: nope")
    assert cli("volume", "rm", "nope").returncode == 1
    assert cli("volume", "rm", "-f", "nope").returncode == 0
    assert cli("volume", "create", "x").returncode == 125  # too short, as Docker
    assert cli("volume", "create", "-d", "nfs", "vol-c").returncode == 125
    assert cli("volume", "ls", "--filter", "bogus=1").returncode == 125
    cli("volume", "rm", "vol-a", "vol-b", anon, check=True)
    assert _volume_names(cli) == []


# --- anonymous volumes, image VOLUMEs, copy-up ---------------------------------------------------------------


def test_image_volume_is_populated_from_the_image(cli, oci_builder):
    entries = [Dir("srv/data", 0o750, uid=33, gid=33), File("srv/data/seed.txt", "seeded\n", 0o640, uid=33, gid=33),
               Dir("srv/data/sub"), Symlink("srv/data/link", "/etc/passwd"), File("srv/other.txt", "not copied\n")]
    image = _image_with(oci_builder, "copyup", entries, ["/srv/data"])
    _run(cli, "--name", "ctr", image, "sh", "-c", "echo more >> /srv/data/seed.txt")
    point = json.loads(cli("inspect", "-f", "{{json .Mounts}}", "ctr", check=True).stdout)[0]
    assert point["Type"] == "volume" and point["Destination"] == "/srv/data" and len(point["Name"]) == 64
    data = point["Source"]
    st = os.stat(data)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (33, 33, 0o750)
    assert sorted(os.listdir(data)) == ["link", "seed.txt", "sub"]
    with open(os.path.join(data, "seed.txt")) as f:
        assert f.read() == "seeded\nmore\n"
    assert os.readlink(os.path.join(data, "link")) == "/etc/passwd"  # copied as a link, never followed
    assert os.stat(os.path.join(data, "seed.txt")).st_uid == 33

    # A named volume at the same place is populated too; once not empty it is never overwritten.
    assert _run(cli, "--rm", "-v", "named:/srv/data", image, "cat", "/srv/data/seed.txt").stdout == "seeded\n"
    _run(cli, "--rm", "-v", "named:/srv/data", image, "sh", "-c", "echo mine > /srv/data/seed.txt")
    assert _run(cli, "--rm", "-v", "named:/srv/data", image, "cat", "/srv/data/seed.txt").stdout == "mine\n"
    # nocopy: an empty volume stays empty
    assert _run(cli, "--rm", "-v", "empty:/srv/data:nocopy", image, "ls", "-A", "/srv/data").stdout == ""

    cli("rm", "-v", "ctr", check=True)
    assert not os.path.exists(data)
    assert _volume_names(cli) == ["empty", "named"]


def test_rm_v_and_run_rm_remove_only_anonymous_volumes(cli, bb):
    _run(cli, "--name", "keep", "-v", "/anon", "-v", "named:/named", bb, "true")
    anon = [n for n in _volume_names(cli) if n != "named"]
    assert len(anon) == 1
    cli("rm", "keep", check=True)  # without -v the anonymous volume stays, dangling
    assert sorted(_volume_names(cli, "dangling=true")) == sorted([anon[0], "named"])
    cli("volume", "rm", anon[0], check=True)

    _run(cli, "--rm", "-v", "/anon2", "--mount", "type=volume,target=/anon3", "-v", "named:/named", bb, "true")
    assert _volume_names(cli) == ["named"]


def test_prune(cli, bb):
    _run(cli, "--name", "user", "-v", "/in-use", bb, "true")
    cli("volume", "create", "--label", "keep=yes", "named-a", check=True)
    cli("volume", "create", "named-b", check=True)
    dangling_anon = cli("volume", "create", check=True).stdout.strip()

    out = cli("volume", "prune", "-f", check=True).stdout
    assert out == f"Deleted Volumes:\n{dangling_anon}\n\nTotal reclaimed space: 0B\n"
    assert set(_volume_names(cli)) == {"named-a", "named-b", *_volume_names(cli, "dangling=false")}

    declined = cli("volume", "prune", "-a", input="n\n", check=True)
    assert "Are you sure you want to continue? [y/N]" in declined.stdout
    assert "named-b" in _volume_names(cli)

    cli("volume", "prune", "-a", "-f", "--filter", "label!=keep", check=True)
    assert "named-b" not in _volume_names(cli) and "named-a" in _volume_names(cli)
    assert cli("volume", "prune", "-a", "-f", check=True).stdout.startswith("Deleted Volumes:\nnamed-a\n")
    assert len(_volume_names(cli)) == 1  # the one "user" still holds
    cli("rm", "-v", "user", check=True)
    assert _volume_names(cli) == []


def test_volume_events(cli, bb):
    since = str(time.time() - 1)
    _run(cli, "--rm", "-v", "evvol:/e", bb, "true")
    cli("volume", "rm", "evvol", check=True)
    cli("volume", "prune", "-f", check=True)
    events = cli("events", "--since", since, "--until", str(time.time() + 1), "--filter", "type=volume",
                 "--format", "{{.Action}} {{.Actor.ID}}", check=True).stdout.split("\n")
    assert [e for e in events if e] == ["create evvol", "mount evvol", "unmount evvol", "destroy evvol", "prune "]


# --- tmpfs ---------------------------------------------------------------------------------------------------


def test_tmpfs_options(cli, bb):
    out = _run(cli, "--rm", "--tmpfs", "/run:size=1m,mode=700", "--mount", "type=tmpfs,dst=/scratch,tmpfs-size=2m",
               bb, "sh", "-c", "grep -E ' /run | /scratch ' /proc/self/mounts; stat -c '%a' /run").stdout.splitlines()
    run_line = next(line for line in out if " /run " in line).split()
    assert run_line[:3] == ["tmpfs", "/run", "tmpfs"]
    assert {"rw", "nosuid", "nodev", "noexec", "size=1024k", "mode=700"} <= set(run_line[3].split(","))
    assert "size=2048k" in next(line for line in out if " /scratch " in line)
    assert out[-1] == "700"
    exec_ok = _run(cli, "--rm", "--tmpfs", "/x:exec", bb, "sh", "-c",
                   "cp /bin/busybox /x/true && /x/true && grep ' /x ' /proc/self/mounts")
    assert "noexec" not in exec_ok.stdout


# --- containment ---------------------------------------------------------------------------------------------


def test_image_symlinks_cannot_redirect_mounts_to_the_host(cli, oci_builder, tmp_path):
    host = tmp_path / "src"
    host.mkdir()
    (host / "marker").write_text("bound\n")
    entries = [Symlink("up", "../../../../../.."), Symlink("abs", "/etc"), Symlink("dangling", "/made/by/mount"),
               Symlink("oldroot", "/dev/.oldroot/etc"), Symlink("magic", "/proc/self/root/etc")]
    image = _image_with(oci_builder, "links", entries, [])
    etc_before = sorted(os.listdir("/etc"))
    # "/up/tmp/<probe>" resolves inside the container (.. stops at its root), never to the host's /tmp.
    probe = "pycontainer-escape-probe"
    out = _run(cli, "--rm", "-v", f"{host}:/up/tmp/{probe}", "-v", f"{host}:/abs/x", "-v", f"{host}:/dangling",
               "-v", f"{host}:/oldroot/x", image, "sh", "-c",
               f"cat /tmp/{probe}/marker /etc/x/marker /made/by/mount/marker /dev/.oldroot/etc/x/marker").stdout
    assert out == "bound\n" * 4
    assert not os.path.exists(f"/tmp/{probe}") and not os.path.exists("/made") and not os.path.exists("/etc/x")
    assert sorted(os.listdir("/etc")) == etc_before
    # Magic links (/proc/self/...) are refused outright.
    magic = _run(cli, "--rm", "-v", f"{host}:/magic/x", image, "true", check=False)
    assert magic.returncode == 125 and "openat2" in magic.stderr


def test_copy_up_through_a_symlinked_volume_path_stays_inside(cli, oci_builder):
    # VOLUME /data where /data -> /dev/.oldroot/etc (the host's /etc while the root is set up): the volume
    # must be populated from the container's view only, never with the host's files.
    entries = [Symlink("data", "/dev/.oldroot/etc"), Symlink("data2", "/proc/1/root/etc")]
    image = _image_with(oci_builder, "oldroot", entries, ["/data"])
    _run(cli, "--name", "ctr", image, "true")
    source = json.loads(cli("inspect", "-f", "{{json .Mounts}}", "ctr", check=True).stdout)[0]["Source"]
    assert os.listdir(source) == []
    cli("rm", "-v", "ctr", check=True)


def test_mount_over_proc_is_refused(cli, bb, tmp_path):
    proc = _run(cli, "--rm", "-v", f"{tmp_path}:/proc/sys", bb, "true", check=False)
    assert proc.returncode == 125 and "/proc" in proc.stderr


# --- concurrency ---------------------------------------------------------------------------------------------


def test_concurrent_creates_and_runs_share_one_volume(cli, bb):
    def create(_index):
        return cli("volume", "create", "shared")

    def run(i):
        return cli("run", "--rm", "-v", "shared:/s", bb, "sh", "-c", f"echo {i} > /s/{i}")

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8))) + list(pool.map(run, range(8)))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    assert _volume_names(cli) == ["shared"]
    data = os.path.join(cli.root, "volumes", "shared", "_data")
    assert sorted(os.listdir(data), key=int) == [str(i) for i in range(8)]
    assert [n for n in os.listdir(os.path.join(cli.root, "volumes")) if n.startswith(".") and n != ".lock"] == []
    cli("volume", "rm", "shared", check=True)


# --- with the rest of the lifecycle --------------------------------------------------------------------------


def test_read_only_rootfs_still_gets_its_mounts(cli, bb, tmp_path):
    proc = _run(cli, "--rm", "--read-only", "-v", f"{tmp_path}:/new/dir", "-v", "rovol:/data", "--tmpfs", "/tmp",
                bb, "sh", "-c", "echo ok > /data/x && touch /tmp/t /new/dir/t && cat /data/x && touch /etc/nope",
                check=False)
    assert (proc.returncode, proc.stdout) == (1, "ok\n") and "Read-only file system" in proc.stderr
    assert (tmp_path / "t").exists()


def test_ps_filter_volume_on_a_detached_container(cli, bb, tmp_path):
    cid = cli("run", "-d", "--name", "svc", "-v", "psvol:/data", "-v", f"{tmp_path}:/b", bb, "sleep", "60",
              check=True).stdout.strip()
    try:
        for value in ("psvol", "/data", str(tmp_path), "/b"):
            assert cli("ps", "-q", "--no-trunc", "--filter", f"volume={value}", check=True).stdout.split() == [cid]
        assert cli("ps", "-q", "--filter", "volume=other", check=True).stdout == ""
        row = json.loads(cli("ps", "--format", "json", "--filter", "volume=psvol", check=True).stdout)
        assert (row["LocalVolumes"], row["Mounts"]) == ("1", f"psvol,{str(tmp_path)[:14]}…")
        assert cli("volume", "rm", "psvol").returncode == 1
    finally:
        cli("rm", "-f", "-v", "svc", check=True)
    assert cli("volume", "rm", "psvol", check=True).stdout == "psvol\n"
