"""`exec --user` resolves names against the running container's own /etc/passwd, as Docker does."""

from __future__ import annotations

import os
import tempfile


def test_a_user_added_inside_the_running_container_can_exec(cli, busybox_image):
    cli("run", "-d", "--name", "users", "--network", "none", busybox_image, "sleep", "300", check=True)
    try:
        cli("exec", "users", "sh", "-c", "echo 'alice:x:4242:4242::/home/alice:/bin/sh' >> /etc/passwd", check=True)
        assert cli("exec", "-u", "alice", "users", "id", "-u", check=True).stdout.strip() == "4242"
        home = cli("exec", "-u", "alice", "users", "sh", "-c", "echo $HOME", check=True).stdout.strip()
        assert home == "/home/alice"
    finally:
        cli("rm", "-f", "users", check=True)


def test_a_symlinked_passwd_is_resolved_inside_the_container_not_on_the_host(cli, busybox_image):
    # The same absolute path exists on the host with another uid for bob: only the container's may count.
    with tempfile.NamedTemporaryFile("w", dir="/tmp", prefix="pycontainer-pw-", delete=False) as host_file:
        host_file.write("bob:x:778:778::/home/bob:/bin/sh\n")
    try:
        cli("run", "-d", "--name", "links", "--network", "none", busybox_image, "sleep", "300", check=True)
        cli("exec", "links", "sh", "-c",
            f"echo 'bob:x:777:777::/home/bob:/bin/sh' > {host_file.name} && ln -sf {host_file.name} /etc/passwd",
            check=True)
        assert cli("exec", "-u", "bob", "links", "id", "-u", check=True).stdout.strip() == "777"
    finally:
        cli("rm", "-f", "links")
        os.unlink(host_file.name)
