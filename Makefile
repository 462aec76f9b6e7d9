# The README's two commands: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export BERTH_DATA_DIR ?= $(CURDIR)/var
export BERTH_HOST ?= 127.0.0.1
export BERTH_PORT ?= 5000
export BERTH_TLS_PORT ?= 5443
# Most tests wait on servers and subprocesses, not the CPU: three processes finish sooner even on two
# cores. Each file stays in one process, so its module fixtures start once.
PYTEST_ARGS ?= -n 3 --dist loadfile

.PHONY: setup system-packages kafka-jars heroku-cli osb-client versitygw stack run migrate test test-fast bench clean

setup: system-packages $(STAMP) kafka-jars heroku-cli osb-client versitygw stack

heroku-cli:
	@bash scripts/install-heroku-cli.sh

# The published OSB client (Kubernetes' Go library) the broker's tests drive Berth with.
osb-client: system-packages
	@bash scripts/build-osb-client.sh

# The S3 server the tests keep slugs and sources in (versitygw, built once into .cache: minutes).
versitygw: system-packages
	@bash scripts/build-versitygw.sh

# The sandbox's root filesystem, built once per machine and package list (a few minutes).
stack: system-packages $(STAMP)
	@PYTHON=$(BIN)/python bash scripts/build-stack.sh

kafka-jars:
	@bash scripts/fetch-kafka.sh

system-packages:
	@bash scripts/install-system-packages.sh

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

migrate: setup
	$(BIN)/python -c "from berth import create_app; create_app()"

run: migrate
	@echo "Berth API on http://$(BERTH_HOST):$(BERTH_PORT) (data in $(BERTH_DATA_DIR))."
	@echo "API and git over TLS on https://$(BERTH_HOST):$(BERTH_TLS_PORT) (CA: $(BERTH_DATA_DIR)/ca/ca.pem, also GET /ca.pem)."
	@echo "Create the first user:  $(BIN)/python -m berth.admin create-user you@example.com"
	@echo "Then:                   export BERTH_API_URL=http://$(BERTH_HOST):$(BERTH_PORT); $(BIN)/berth login"
	$(BIN)/python -m berth.serve

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	@bash scripts/install-system-packages.sh --bench
	$(BIN)/python bench/api.py --check
	$(BIN)/python bench/web.py --check

clean:
	rm -rf $(VENV) build *.egg-info .cache
