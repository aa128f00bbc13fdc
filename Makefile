# Two entry points (see README): `make demo` sets everything up and runs the main job; `make test` runs
# every suite. Both are idempotent; a re-run only does what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := demo

VENV := .venv
PY := $(VENV)/bin/python
STATE := $(CURDIR)/.state
REGISTRY_PORT ?= 5000
DEBIAN_PACKAGES := docker-registry skopeo busybox-static nftables libnftables1 libseccomp2 python3-venv tini \
	golang-github-containers-common iproute2 procps curl util-linux debootstrap logrotate \
	python3-cffi python3-pyroute2 python3-zstandard
# The engine's default config file: the demo points its docker.io mirror at the local registry, as a user would
# point Docker's registry-mirrors at a site mirror (other keys already in the file are kept).
ENGINE_CONFIG := /etc/pycontainer/engine.json

.PHONY: demo test setup packages venv lint sanity unit unit-unprivileged integration registry seed clean-state debian-image \
	docker-peer

## Set up and run the main job: a local registry seeded with busybox, then playbooks/hello.yml.
demo: setup registry seed
	$(VENV)/bin/ansible-playbook playbooks/hello.yml

## Run every test suite; non-zero on any failure.
test: setup lint sanity unit-unprivileged debian-image
	$(PY) -m pytest tests

setup: packages venv $(VENV)/.collection-linked

packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages: $$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The venv uses Debian's Python on purpose: it is what a fresh Debian 12 machine has.
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || /usr/bin/python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@# setuptools' editable import hook costs every command ~10 ms (pathlib, importlib.util); a plain path
	@# entry does the same job: .collections/ansible_collections/pycontainer/engine is this repository.
	rm -f $(VENV)/lib/python3*/site-packages/__editable__*pycontainer_engine*
	echo "$(CURDIR)/.collections" > "$$(echo $(VENV)/lib/python3*/site-packages)/pycontainer_engine.pth"
	touch $@

# The repository is the collection pycontainer.engine in place: ansible.cfg looks in .collections.
$(VENV)/.collection-linked:
	mkdir -p .collections/ansible_collections/pycontainer
	ln -sfn ../../.. .collections/ansible_collections/pycontainer/engine
	touch $@

# The Debian bookworm rootfs with python3 that tests run Ansible in (molecule's `containers` scenario, the
# connection plugin): debootstrap downloads packages, so it is built here, once, like the apt-get above.
debian-image: setup $(STATE)/cache/debian-python.tar

$(STATE)/cache/debian-python.tar:
	$(PY) -m tests.fixtures.debian_image build --out $@

## ansible-test sanity for Python 3.11 on a copy of the collection (offline but for PyPI; see tests/sanity/run.py).
sanity: setup
	$(PY) tests/sanity/run.py

# tests/unit needs no root: run it as nobody (65534), as an unprivileged user would. The tree must be readable by
# that user; nobody cannot write here, hence no bytecode cache and HOME in /tmp.
## tests/unit needs no privileges: run it as nobody. CAP_DAC_READ_SEARCH (read and search only, no write, no
## other capability) lets nobody read a clone under /root (0700), as in CI's fresh root.
unit-unprivileged: setup
	setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=+dac_read_search \
		--ambient-caps=+dac_read_search env PYTHONDONTWRITEBYTECODE=1 HOME=/tmp \
		$(PY) -m pytest tests/unit -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check plugins tests bench tools
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/ansible-lint --offline -q

registry: setup
	$(PY) -m tests.fixtures.registry start --state-dir $(STATE)/registry --port $(REGISTRY_PORT)
	$(PY) -m tests.fixtures.registry configure-mirror --config $(ENGINE_CONFIG) --mirror http://127.0.0.1:$(REGISTRY_PORT)

seed: registry
	$(PY) -m tests.fixtures.images seed-busybox --registry 127.0.0.1:$(REGISTRY_PORT)

## Docker for the security probes' comparison (tests/fixtures/docker_peer.py): installs docker.io if missing and starts
## a dockerd of its own (no firewall or bridge changes), left running so test sessions reuse it.
docker-peer: setup
	$(PY) -m tests.fixtures.docker_peer start

clean-state:
	-$(PY) -m tests.fixtures.registry stop --state-dir $(STATE)/registry
	rm -rf $(STATE)
