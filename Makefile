# storagepools.libvirt: every entry point. `make test` is what CI runs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
comma := ,
COLLECTIONS := $(CURDIR)/.build/collections
SANITY_ROOT := $(CURDIR)/.build/sanity/ansible_collections/storagepools/libvirt
export PYTHONPATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup libvirtd test test-lane-python test-lane-guests units integration sanity docs-lint docs changelog lint test-molecule demo bench clean

setup:
	scripts/setup.sh

libvirtd: setup
	scripts/start-libvirtd.sh

# Unit tests under coverage, then line coverage by unit tests alone of the layers that need no daemon
# or disk: _core, the XML models, the Nova layout rules, image inspection, the qemu-img argv builders
# and the planners of _converge (its *_plan.py files, pool, secret, report; the rest observes and writes).
UNIT_COVERAGE := $(addprefix plugins/module_utils/,_core/* _xml/* _nova/* _images/inspect.py _images/qemu_img.py \
	_converge/*_plan.py _converge/pool.py _converge/secret.py _converge/report.py)
units: export COVERAGE_FILE := $(CURDIR)/.build/unit-coverage
units: setup
	$(PY) -m coverage run --source=plugins/module_utils -m pytest -q tests/unit
	$(PY) -m coverage report --skip-empty --include='$(subst $() ,$(comma),$(UNIT_COVERAGE))'

integration: libvirtd
	$(PY) -m pytest -q tests/integration

# ansible-test wants the collection at ansible_collections/<ns>/<name>: test a
# copy of the files git would ship (tracked and new, not ignored).
sanity: setup
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard | xargs -0 tar -c | tar -x -C $(SANITY_ROOT)
	cd $(SANITY_ROOT) && git init -q && git add -A  # its own file list: .build/ is ignored here
	cd $(SANITY_ROOT) && ansible-test sanity --venv --python 3.11 --color no

docs-lint: setup
	antsibull-docs lint-collection-docs --plugin-docs .

# The release notes (CHANGELOG.rst and changelogs/changelog.yaml) from changelogs/fragments, for the version in
# galaxy.yml: new fragments join that release, edited ones are read again. Re-run after a fragment is added or
# changed (docs/development.md, "Releasing"); tests/unit/test_release_notes.py fails until then.
changelog: setup
	antsibull-changelog lint
	antsibull-changelog release --reload-plugins --refresh-fragments without-archives
	antsibull-changelog generate

# The docs as an HTML site (.build/docs/site/build/html): every module, role and playbook, built by
# antsibull-docs and Sphinx (in .build/docs-venv, tests/docs-requirements.txt) with warnings as errors.
docs: setup
	scripts/tool-venv.sh .build/docs-venv tests/docs-requirements.txt
	.build/docs-venv/bin/python scripts/build_docs.py

# ansible-lint --profile production on the roles and playbooks (.ansible-lint)
lint: setup
	ansible-lint --offline roles/ playbooks/

# Molecule scenarios in libvirt guest VMs (TCG); the guest image is built once
# and cached (molecule/resources/build-image.sh).
test-molecule: libvirtd
	molecule test -s default
	molecule test -s lvm

# Two lanes side by side (the machine has two cores; a Molecule guest spends one in TCG, as this machine's
# KVM does not run guests): the Python tests then sanity, and the Molecule scenarios then the lints. pytest's
# output comes as one block when it ends (--output-sync), the rest as it runs (-Onone); either lane failing fails the run.
# the lanes' sub-make options ($(MAKE) itself stays in each recipe: only there does make know it as recursive)
LANE := --no-print-directory -j1 -Onone -o setup -o libvirtd
test: setup libvirtd
	$(MAKE) --no-print-directory -j2 --output-sync=target test-lane-python test-lane-guests

test-lane-python:
	$(PY) -m pytest -q --durations=30 tests/unit tests/integration
	$(MAKE) $(LANE) sanity

test-lane-guests:
	$(MAKE) $(LANE) test-molecule docs-lint lint

demo: libvirtd
	demo/run

bench: libvirtd
	bench/pool_noop
	bench/clone
	bench/transfer
	bench/adopt
	bench/transition
	bench/prune

clean:
	rm -rf .build .pytest_cache
