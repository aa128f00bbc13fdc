from ansible_collections.pycontainer.engine.plugins.module_utils.system.facts import cgroup_layout, filesystem_of
from ansible_collections.pycontainer.engine.plugins.module_utils.timefmt import human_binary_size

HYBRID = [("/", "ext4", "rw"), ("/sys/fs/cgroup", "tmpfs", "rw"), ("/sys/fs/cgroup/memory", "cgroup", "rw,memory"),
          ("/sys/fs/cgroup/cpu", "cgroup", "rw,cpu"), ("/sys/fs/cgroup/unified", "cgroup2", "rw")]
V2 = [("/", "ext4", "rw"), ("/sys/fs/cgroup", "cgroup2", "rw,nsdelegate")]
V1 = HYBRID[:4]


def test_cgroup_layout_tells_v1_v2_and_hybrid_apart():
    assert (cgroup_layout(HYBRID)["mode"], cgroup_layout(HYBRID)["version"]) == ("hybrid", "1")
    assert (cgroup_layout(V2)["mode"], cgroup_layout(V2)["version"]) == ("v2", "2")
    assert (cgroup_layout(V1)["mode"], cgroup_layout(V1)["version"]) == ("v1", "1")
    assert cgroup_layout(HYBRID)["v1"]["memory"] == "/sys/fs/cgroup/memory"


def test_filesystem_of_takes_the_longest_mount_point():
    mounts = [("/", "ext4", ""), ("/var", "xfs", ""), ("/var/lib/x", "tmpfs", "")]
    assert filesystem_of("/var/lib/y", mounts) == "xfs"
    assert filesystem_of("/var/lib/x/z", mounts) == "tmpfs"
    assert filesystem_of("/variable", mounts) == "ext4"


def test_binary_sizes_like_docker_info():
    assert human_binary_size(25_272_000_000) == "23.54GiB"
    assert human_binary_size(512) == "512B"
