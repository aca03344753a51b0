# The newcomer's two commands: `make demo` (the main job end to end) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EMULATOR := loyalty_worker/firestore_emulator
AUTH_EMULATOR := loyalty_worker/auth_emulator
BROWSER_SDK := loyalty_worker/api/browser
NPM_CI := npm ci --no-audit --no-fund --loglevel=error
CUSTOMERS ?= 1000

.PHONY: install browser prometheus lock demo test test-unit test-browser screenshots test-chaos check format worker beat flower sandbox firestore auth-emulator bench bench-fleet clean

# Every package, build tools included, comes from requirements.lock at the version and hashes
# it pins; the project itself goes on top without resolving anything. `make lock` rewrites the
# lock after a change to pyproject.toml's dependencies.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $@

# npm's packages likewise come from each directory's package-lock.json: the Firestore emulator,
# Firebase's Auth emulator (firebase-tools, without its optional packages: re2 would download a
# binary from GitHub or compile one) and the dashboard's browser SDK (firebase, whose prebuilt
# browser files the API serves). No install script runs.
$(EMULATOR)/node_modules/.package-lock.json: $(EMULATOR)/package.json $(EMULATOR)/package-lock.json
	cd $(EMULATOR) && $(NPM_CI)

$(AUTH_EMULATOR)/node_modules/.package-lock.json: $(AUTH_EMULATOR)/package.json $(AUTH_EMULATOR)/package-lock.json
	cd $(AUTH_EMULATOR) && $(NPM_CI) --omit=optional --ignore-scripts

$(BROWSER_SDK)/node_modules/.package-lock.json: $(BROWSER_SDK)/package.json $(BROWSER_SDK)/package-lock.json
	cd $(BROWSER_SDK) && $(NPM_CI) --ignore-scripts

install: $(BIN)/.installed $(EMULATOR)/node_modules/.package-lock.json \
	$(AUTH_EMULATOR)/node_modules/.package-lock.json $(BROWSER_SDK)/node_modules/.package-lock.json

# The dashboard's browser tests drive Debian's Chromium through its chromedriver; no test tool
# ever downloads a browser. Installed where missing (as root, from Debian's packages); npm's
# axe-core (tests/browser/axe, locked) is what they run in each page to check its accessibility.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver; }
	cd tests/browser/axe && npm ci --no-audit --no-fund --loglevel=error

# The alert rules' tests (tests/unit/test_alert_rules.py) run Debian's promtool and amtool.
# Installed where missing (as root, without recommends) with a policy-rc.d that refuses every
# service start while apt runs, so the packages' postinst leaves no prometheus or alertmanager
# daemon running; a policy-rc.d already in place (as in Docker images) is left as it was.
prometheus:
	@command -v promtool >/dev/null && command -v amtool >/dev/null || { \
		policy=/usr/sbin/policy-rc.d; added=; \
		if [ ! -e $$policy ]; then \
			printf '#!/bin/sh\nexit 101\n' > $$policy && chmod 755 $$policy && added=1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends prometheus prometheus-alertmanager; status=$$?; \
		[ -z "$$added" ] || rm -f $$policy; exit $$status; }

lock: $(BIN)/.installed
	$(BIN)/pip install --quiet "pip-tools>=7.4,<8"
	$(BIN)/pip-compile --quiet --generate-hashes --extra dev --strip-extras --allow-unsafe \
		--all-build-deps --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

demo: install
	$(BIN)/loyalty-worker demo --customers $(CUSTOMERS)

test: install browser prometheus
	$(BIN)/pytest

test-unit: install prometheus
	$(BIN)/pytest tests/unit

# The dashboard in headless Chromium (Debian's chromium and chromium-driver; also part of
# `make test`). `make screenshots` reruns them saving the dashboard's screenshots into docs/.
test-browser: install browser
	$(BIN)/pytest tests/browser

screenshots: install browser
	LOYALTY_SCREENSHOTS=docs $(BIN)/pytest tests/browser -p no:randomly

# The chaos suite (tests/chaos, marked chaos): real stack, one injected failure per case, on the
# settings' defaults (Beat's schedule and the watchdog's delays included).
test-chaos: install
	$(BIN)/pytest tests/chaos -m chaos -p no:randomly -s

# lint-imports keeps the rings pointing inward (contracts in pyproject.toml); the two tests keep
# the package within its size limits and the docs' links and settings true.
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy --strict loyalty_worker tests
	$(BIN)/pytest -q -p no:randomly tests/unit/test_code_limits.py tests/unit/test_docs.py

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Each worker process serves its metrics on its own port: a second one on this host is
# `make worker LOYALTY_METRICS_PORT=9809`.
LOYALTY_METRICS_PORT ?= 9808
worker: install
	LOYALTY_METRICS_PORT=$(LOYALTY_METRICS_PORT) $(BIN)/celery -A loyalty_worker.celery_app worker -Q loyalty.runs,loyalty.customers,celery,loyalty.batch --loglevel=INFO

beat: install
	$(BIN)/celery -A loyalty_worker.celery_app beat --loglevel=INFO

flower: install
	$(BIN)/loyalty-worker flower

sandbox: install
	$(BIN)/loyalty-worker sandbox --port 8090 --customers 1000 --seed 1

firestore: install
	$(BIN)/loyalty-worker firestore-emulator --port 8085

auth-emulator: install
	$(BIN)/loyalty-worker auth-emulator --port 9099

bench: install
	$(BIN)/python benchmarks/bench_sync.py --alpine-listing both --latencies 50 --repeat 3 \
		--naive-limit 300 --workers 2

# The 02:00 wave (benchmarks/README.md): every org of a long-tailed fleet (129,000 customers in
# 50 orgs) started at once on 2 workers x 16 threads; several minutes. FLEET_ARGS=--quick for a
# first look (8,000 customers), FLEET_ARGS="--workers-from DIR" for another checkout's workers.
# Never part of CI.
bench-fleet: install
	$(BIN)/python benchmarks/bench_fleet.py $(FLEET_ARGS)

clean:
	rm -rf $(VENV) $(EMULATOR)/node_modules $(AUTH_EMULATOR)/node_modules \
		$(BROWSER_SDK)/node_modules .mypy_cache .pytest_cache .ruff_cache .demo \
		bench-results.json bench-fleet-results.json
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
