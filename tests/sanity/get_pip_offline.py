"""Offline stand-in for ansible-test's pip bootstrap script (get-pip.py).

ansible-test creates each sanity virtual environment without pip and then runs get-pip.py, which it downloads from
ci-files.testing.ansible.com (not reachable from our CI) unless ~/.ansible/test/cache/get_pip_<version>.py already
exists. tests/sanity/run.py puts this file there. It honours get-pip's command line the way ansible-test calls it
(pip options, package pins such as pip==24.2, --no-setuptools, --no-wheel): pip comes from the interpreter's own
ensurepip wheel and is then upgraded to the pinned packages from the package index (PyPI), through pip itself.
"""

from __future__ import annotations

import subprocess
import sys

# get-pip options that only say what not to install; pip itself does not know them.
GET_PIP_ONLY_OPTIONS = frozenset(('--no-setuptools', '--no-wheel'))


def main() -> None:
    """Install pip into the running interpreter's environment, then the requested packages."""
    pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    # ensurepip installs the wheel shipped with the interpreter (Debian: python3-pip-whl), no network needed.
    subprocess.run([sys.executable, '-m', 'ensurepip', '--default-pip'], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--upgrade', *pip_args], check=True)


if __name__ == '__main__':
    main()
