# Front door: `make demo` and `make test` set everything up on a fresh machine, then run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo lint test bench clean image image-test

install: $(STAMP)

# When missing: FFmpeg's shared libraries for the torchcodec decoder backend (Debian 12's FFmpeg 5.1), and
# headless Chromium + chromedriver for the real-browser tests (tests/browser.py), and PostgreSQL for the live
# production suite (tests/ops/test_production.py: a throw-away cluster, never the system's)
FFMPEG_LIBS := libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8

$(STAMP): pyproject.toml
	ldconfig -p | grep -q 'libavcodec.so.59 ' || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FFMPEG_LIBS) >/dev/null; }
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: these exact versions are served from this machine's disk
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vad demo

# ruff (lint + format check) and mypy (anomaly_models/, tasks/) before the tests: CI runs all of them
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/extract.py
	$(BIN)/python bench/feed.py
	$(BIN)/python bench/small_files.py
	$(BIN)/python bench/index.py
	$(BIN)/python bench/objects.py
	test -d vad-demo/models || $(MAKE) demo
	$(BIN)/python bench/cli.py

# the container image, built here with buildah on a debootstrap base (minutes, GBs; not part of `make test`):
# infra/image-build.sh, then the smoke test inside the image (infra/image-test.sh). See infra/README.md.
image:
	command -v buildah >/dev/null && command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap >/dev/null; }
	infra/image-build.sh

image-test: image
	infra/image-test.sh

clean:
	rm -rf $(VENV) vad-data vad-demo
