# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo test lint browser postgres mailservers bench clean

install: $(STAMP)

# torch==2.13.0 (pinned in pyproject.toml) comes from this machine's local wheel as a CPU build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# Ingest the bundled sample dumps, rank, render, deliver into var/demo/outbox, print where the mails
# are. --day sends the newest sample day's digest to everyone now, whatever their local send time.
# The demo keeps a database, outbox and state of its own under var/demo/ and never uses SMTP, so
# a real install (var/digest.db) never sees its sample days: `digest send` there never picks one.
DEMO_DAY := 2026-11-20
DEMO_DB := var/demo/digest.db
demo: install
	DIGEST_DB=$(DEMO_DB) DIGEST_OUTBOX=var/demo/outbox DIGEST_SMTP_HOST= DIGEST_INBOX=samples \
	  $(BIN)/digest run --day $(DEMO_DAY)
	@echo "The demo's mails are in var/demo/outbox/$(DEMO_DAY)/, its database is $(DEMO_DB) (state: var/demo/)."
	@echo "Open an HTML file above in a browser, or try: DIGEST_DB=$(DEMO_DB) $(BIN)/digest preview --user alice"

lint: install
	$(BIN)/ruff check digest tests benchmarks setup.py

# The email's browser tests need Debian's chromium; install it when missing (CI runs as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "could not install chromium: the browser tests will be skipped"; }

# The store's tests run on PostgreSQL too, a server they start from Debian's binaries in a
# temporary folder; install them when missing.
postgres:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  echo "installing postgresql for the store's tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	  || echo "could not install postgresql: the PostgreSQL tests will be skipped"; }

# The bounce tests send through a private Postfix and read its DSNs over a private Dovecot, each
# started by the tests in a temporary folder on a free loopback port (tests/mailservers.py). Install
# Debian's packages when missing, answering Postfix's questions ahead ("Local only"); the packages'
# own system instances are not wanted, so stop any that the install started.
mailservers:
	@{ command -v postfix >/dev/null 2>&1 || test -x /usr/sbin/postfix; } && \
	  test -x /usr/lib/dovecot/imap || { \
	  echo "installing postfix and dovecot-imapd for the bounce tests"; \
	  ( printf '%s\n' "postfix postfix/main_mailer_type select Local only" \
	      "postfix postfix/mailname string digest-test.localdomain" | debconf-set-selections \
	    && apt-get update -qq \
	    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix dovecot-imapd >/dev/null 2>&1 \
	    && { /usr/sbin/postfix status >/dev/null 2>&1 && /usr/sbin/postfix stop >/dev/null 2>&1; \
	         /usr/sbin/doveadm stop >/dev/null 2>&1; true; } ) \
	  || echo "could not install postfix and dovecot-imapd: the mail server tests will be skipped"; }

test: install lint browser postgres mailservers
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/ingest_bench.py
	$(BIN)/python benchmarks/send_bench.py
	$(BIN)/python benchmarks/rank_quality.py
	$(BIN)/python benchmarks/tldr_bench.py
	$(BIN)/python benchmarks/rank_bench.py
	$(BIN)/python benchmarks/feedback_bench.py

clean:
	rm -rf var .pytest_cache .ruff_cache
