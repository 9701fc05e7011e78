# llmd.gke: two commands for a new user: `make sandbox` and `make test`. Every target bootstraps
# what it needs (`make setup`: .venv with pinned packages, kubectl and helm).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
VENV_ABS := $(abspath $(VENV))
PY := $(VENV_ABS)/bin/python
STAMP := $(VENV)/.setup-stamp
BUILD := build
COLLECTION_DIR := $(BUILD)/ansible_collections/llmd/gke
# Tools of the venv first: kubectl 1.37 and helm 4, not whatever the machine has.
export PATH := $(VENV_ABS)/bin:$(PATH)
export ANSIBLE_HOME := $(abspath .cache/ansible)
export ANSIBLE_LOCAL_TEMP := $(abspath .cache/ansible/tmp)
export ANSIBLE_REMOTE_TEMP := $(abspath .cache/ansible/tmp)
PYTEST_ARGS ?=
# Playbook tests in parallel, one test file per worker (a file shares one emulator), in the
# order of tests/integration/conftest.py (longest first, not xdist's reorder): one worker more
# than the CPUs, because the tests wait about a quarter of their time (emulated operations, the
# fake model server's latencies) and a third worker fills those waits on 2 cores (make test:
# 702 s, against 747 s with two workers on a faster moment of the same machine).
# PYTEST_WORKERS=0 runs them in this process.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
# make sandbox ARGS="--tags model -v": ansible-playbook arguments, as they are. SANDBOX_ARGS: the
# script's own options (--time-scale 0.1) and, as before, ansible-playbook arguments too (those the
# script does not know pass through). KEEP=1: the emulator stays up after site.yml (make
# sandbox-stop stops it).
ARGS ?=
SANDBOX_ARGS ?=
KEEP ?=

.PHONY: help setup lock lint ansible-lint ruff sanity changelog-lint unit emulator integration test \
	sandbox sandbox-stop molecule build clean docs docs-lint

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## Build .venv (Python 3.12+, pinned packages, kubectl, helm)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt tests/tools/install_helm.py
	@python=$$(tests/tools/find_python.sh); \
	  if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
	    echo "creating $(VENV) with $$python"; rm -rf $(VENV); "$$python" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --disable-pip-version-check \
	  -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(PY) tests/tools/install_helm.py $(VENV_ABS)/bin
	@kubectl version --client | sed -n 1p; helm version --short
	@touch $@

# network-config-analyzer (command nca), the NetworkPolicy evaluator of tests/integration/
# test_netpol.py, in its own virtualenv: it pins PyYAML 6.0.2, which the kubernetes client of .venv
# does not accept. The tests find it through LLMD_NCA.
NCA_VENV ?= .venv-nca
NCA_STAMP := $(NCA_VENV)/.setup-stamp
export LLMD_NCA := $(abspath $(NCA_VENV))/bin/nca
.PHONY: nca

nca: $(NCA_STAMP) ## Build .venv-nca (network-config-analyzer, pinned) for the NetworkPolicy tests

$(NCA_STAMP): tests/netpol/requirements-nca.txt
	@python=$$(tests/tools/find_python.sh); rm -rf $(NCA_VENV); "$$python" -m venv $(NCA_VENV)
	$(NCA_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  -r tests/netpol/requirements-nca.txt
	@$(NCA_VENV)/bin/nca --version | sed -n 1p
	@touch $@

# inference-perf (PyPI, Python 3.12+), the third client of `make bench`, in its own virtualenv:
# it pins transformers and pulls datasets, pandas and cloud SDKs the project's .venv does not need.
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.setup-stamp

$(BENCH_STAMP): tests/bench/requirements-bench.txt
	@python=$$(tests/tools/find_python.sh); rm -rf $(BENCH_VENV); "$$python" -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  -r tests/bench/requirements-bench.txt
	@$(BENCH_VENV)/bin/pip show inference-perf | sed -n 2p
	@touch $@

lock: ## Re-resolve requirements*.txt and rewrite constraints.txt
	@python=$$(tests/tools/find_python.sh); rm -rf $(BUILD)/lockvenv; \
	  "$$python" -m venv $(BUILD)/lockvenv; \
	  $(BUILD)/lockvenv/bin/pip install --quiet -r requirements.txt -r requirements-dev.txt; \
	  { echo "# Full lock of requirements.txt + requirements-dev.txt on Python 3.12 (make lock regenerates it)."; \
	    $(BUILD)/lockvenv/bin/pip freeze --exclude-editable; } > constraints.txt

lint: ansible-lint ruff sanity changelog-lint docs-lint ## All static checks

ansible-lint: $(STAMP) ## ansible-lint, production profile
	ansible-lint --offline

ruff: $(STAMP) ## ruff lint and format check of all Python
	ruff check .
	ruff format --check .

# The checkout's files (tracked and new, not ignored) copied to $(1)/ansible_collections/llmd/gke.
define copy_collection
	@rm -rf $(1)/ansible_collections && mkdir -p $(1)/ansible_collections/llmd/gke
	@git ls-files -z --cached --others --exclude-standard \
	  | grep -zv '^collections/' | xargs -0 cp --parents -P -t $(1)/ansible_collections/llmd/gke
endef

$(COLLECTION_DIR): $(STAMP) FORCE
	$(call copy_collection,$(BUILD))
	@# ansible-test lists files with git: give the copy its own index (the checkout ignores build/).
	@cd $(COLLECTION_DIR) && git init -q && git add -A
.PHONY: FORCE
FORCE:

sanity: $(COLLECTION_DIR) ## ansible-test sanity on a proper ansible_collections/llmd/gke tree
	@$(PY) tests/tools/ansible_test_pip_bootstrap.py --install
	cd $(COLLECTION_DIR) && ansible-test sanity --python $$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])') --color no

changelog-lint: $(STAMP) ## Check the changelog fragments
	antsibull-changelog lint

# antsibull-docs' collection docs lint: the plugin and role docs (schema, markup, references to
# the collection's modules, roles and options), the guides' RST (rstcheck) and their references
# (:ansplugin:, :ansopt:, ...: --check-extra-docs-refs), docs/docsite/extra-docs.yml and links.yml.
# It lints a copy of the git-tracked files of the directory it is given (antsibull-fileutils'
# GitCopier): the collection tree, whose own git index holds every file of the checkout.
docs-lint: $(COLLECTION_DIR) ## Lint the docsite: plugin and role docs, guides and their references
	cd $(COLLECTION_DIR) && antsibull-docs lint-collection-docs --plugin-docs \
	  --validate-collection-refs self --check-extra-docs-refs .

# The docsite is built from its own copy of the collection: `make test` runs docs-test (in the
# unit-emulator job) while sanity and docs-lint use $(COLLECTION_DIR) (in the lint job).
DOCS_COLLECTIONS := $(BUILD)/docs-collections
.PHONY: docs-test

docs: $(STAMP) ## Build the HTML docsite (modules, roles, filter, guides) into build/docs
	$(call copy_collection,$(DOCS_COLLECTIONS))
	$(PY) tests/tools/build_docs.py --collections-path $(DOCS_COLLECTIONS) \
	  --work-dir $(BUILD)/docsite --dest $(BUILD)/docs

docs-test: docs ## Build the docsite and check every page in headless Chromium (links, sections)
	pytest tests/docs $(PYTEST_ARGS)

unit: $(STAMP) ## Unit tests (module_utils and modules)
	pytest tests/unit $(PYTEST_ARGS)

emulator: $(STAMP) ## Tests of the GKE/Kubernetes emulator with real kubectl, helm and clients
	pytest tests/emulator/tests $(PYTEST_ARGS)

integration: $(STAMP) $(NCA_STAMP) ## Playbook tests through ansible-playbook
	pytest tests/integration -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder \
	  --durations=12 $(PYTEST_ARGS)

# All at once, output kept per target: the playbook tests (the longest, started first), the static
# checks (ansible-test sanity on one core) and the unit, docsite and emulator tests (they mostly
# wait for emulated time). On 2 cores this is about 3 minutes shorter than the static checks and
# the unit tests first, then the playbook tests alone.
test: $(STAMP) $(NCA_STAMP) ## Everything CI runs (lint, unit, docsite, emulator, integration)
	$(MAKE) --no-print-directory -j3 --output-sync=target integration lint unit-emulator

.PHONY: unit-emulator
unit-emulator: $(STAMP)
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory docs-test
	$(MAKE) --no-print-directory emulator

sandbox: $(STAMP) ## site.yml against the emulator (ARGS="--tags model -v"; KEEP=1 leaves it up)
	$(PY) tests/tools/sandbox.py $(if $(filter-out 0 no false,$(KEEP)),--keep) $(SANDBOX_ARGS) \
	  $(if $(strip $(ARGS)),-- $(ARGS))

sandbox-stop: ## Stop the sandbox that make sandbox KEEP=1 left running
	@if [ -x $(PY) ]; then $(PY) tests/tools/sandbox.py --stop; \
	  else echo "No $(VENV): make sandbox-stop VENV=<the venv make sandbox ran with>" >&2; exit 1; fi

# Scenarios live in molecule/ (MOLECULE_GLOB says so: molecule would look in extensions/molecule
# of a collection); the GCP variables of the shell must not change what preflight finds.
molecule: $(STAMP) ## Molecule scenario default: site.yml on the emulator, idempotence, verify
	env -u GCP_PROJECT -u GCP_AUTH_KIND -u GCP_ACCESS_TOKEN -u GOOGLE_APPLICATION_CREDENTIALS \
	  MOLECULE_GLOB='molecule/*/molecule.yml' molecule test -s default

build: $(STAMP) ## Build the collection tarball into build/
	ansible-galaxy collection build --force --output-path $(BUILD) .

clean: ## Remove build outputs and caches (keeps .venv)
	rm -rf $(BUILD) .cache .pytest_cache .ruff_cache tests/output

# Benchmarks (speed is measured here, never asserted by tests): llmisvc_wait notices Ready within
# 1 s of the flip and keeps its API calls bounded during a long wait (counted in the client);
# bench_run's load engine against a raw aiohttp loop and inference-perf on a fake OpenAI server,
# client and server on one CPU each (BENCH_COMPARE_ARGS: e.g. --repeat 3, --scale 0.5).
.PHONY: bench
bench: $(STAMP) $(BENCH_STAMP) ## Benchmarks: llmisvc_wait; bench_run vs raw aiohttp vs inference-perf
	PYTHONPATH=tests/emulator $(PY) tests/bench/bench_llmisvc_wait.py $(BENCH_ARGS)
	$(PY) tests/bench/bench_run_compare.py --bench-venv $(BENCH_VENV) $(BENCH_COMPARE_ARGS)
