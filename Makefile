# Overlap: the book and its companion package.
#   make test   install into .venv, run unit tests, the strict book build (which executes every
#               notebook once, afresh, failing on any error), then the built book in headless Chromium
#   make book   install, execute every notebook and build the HTML book into _build/html
#   make lab    install and open JupyterLab on the book
# Install is idempotent: it reruns only when pyproject.toml or constraints-cpu.txt change.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
JB     := $(VENV)/bin/jb
STAMP  := $(VENV)/.installed
# Extra pip arguments, e.g. PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
# on a machine whose default index would otherwise give the CUDA build of torch.
PIP_ARGS ?=
JOBS   ?= 2

.PHONY: install test unit notebooks book-strict browser lab-test book lab strip bench paper clean help

help:
	@sed -n '2,6p' Makefile

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints-cpu.txt | $(PY)
	$(PIP) install --upgrade pip $(PIP_ARGS)
	# CPU PyTorch first and pinned, so nothing below can pull the multi-GB CUDA build.
	$(PIP) install -c constraints-cpu.txt $(PIP_ARGS) "torch==2.13.0"
	$(PIP) install -c constraints-cpu.txt $(PIP_ARGS) -e ".[book,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (Overlap)"
	touch $(STAMP)

# JupyterLab settings of the book: render every cell, not only those in view, so jupyterlab-myst
# evaluates each Markdown cell's {eval} numbers when Run All reaches it (tools/jupyterlab/).
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_OVERRIDES): tools/jupyterlab/overrides.json | $(STAMP)
	mkdir -p $(dir $@)
	cp $< $@

install: $(STAMP) $(LAB_OVERRIDES)

unit: install
	$(PY) -m pytest tests -n $(JOBS) -p no:cacheprovider

notebooks: install
	mkdir -p _build
	$(PY) tools/nbtest.py book --times-json _build/notebook-times.json

# jupyter-cache keys on cell sources only: clear it, and Sphinx's environment (which would skip
# unchanged notebooks), when any companion/*.py changed.
CACHE_KEY := $(PY) tools/cache_key.py _build/.jupyter_cache companion _build/.doctrees

book-strict: install
	$(CACHE_KEY)
	$(JB) build . --builder html -W -n --keep-going

# The built book in headless Chromium, offline (tools/browser_test.py); skipped without Chromium.
browser: install
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  $(PY) tools/browser_test.py _build/html --screenshots _build/screenshots; \
	else \
	  echo "SKIPPED: install chromium chromium-driver (the browser test of the built book did not run)"; \
	fi

# make test executes each notebook once, in the book build: the cache and Sphinx's environment are
# emptied first, so every notebook runs on a fresh kernel and any failing cell (a hidden assert
# included) fails the build; report_times then checks that each notebook left a successful
# execution. `make notebooks` runs the same notebooks under nbval, as instructors do (.ci/run).
test: install
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory unit && \
	rm -rf _build/.jupyter_cache _build/.doctrees && \
	$(MAKE) --no-print-directory book-strict && \
	$(PY) tools/report_times.py --cache _build/.jupyter_cache book && \
	$(MAKE) --no-print-directory browser && \
	echo "make test: all stages passed in $$(( $$(date +%s) - start )) s"

# The nine widget notebooks in JupyterLab in headless Chromium (tools/lab_test.py), ~5 min.
WIDGET_NOTEBOOKS := book/calibration/01_overlap_and_calibration.ipynb \
	book/calibration/02_limits_of_temperature_scaling.ipynb book/calibration/03_mixup.ipynb \
	book/comm/01_alpha_beta.ipynb \
	book/diloco/03_utilization.ipynb book/co2/01_stale_outer_update.ipynb \
	book/t3/02_track_and_trigger.ipynb book/ladder/02_speed.ipynb book/seld/01_spatial_audio_foa.ipynb
lab-test: install
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  $(PY) tools/lab_test.py $(WIDGET_NOTEBOOKS) --screenshots _build/screenshots/lab; \
	else \
	  echo "SKIPPED: install chromium chromium-driver (the JupyterLab test did not run)"; \
	fi

book: install
	$(CACHE_KEY)
	$(JB) build . --builder html
	@echo "Open $(CURDIR)/_build/html/index.html"

lab: install
	$(VENV)/bin/jupyter lab book

strip:
	$(PY) -m jupyter nbconvert --clear-output --inplace $$(git ls-files 'book/*.ipynb' 'book/**/*.ipynb')
	$(PY) tools/strip_widget_state.py $$(git ls-files 'book/*.ipynb' 'book/**/*.ipynb')

bench: install
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Paper-scale run of one chapter's notebooks, e.g. `make paper CHAPTER=calibration`.
paper: install
	@test -n "$(CHAPTER)" || (echo "usage: make paper CHAPTER=<folder under book/>"; exit 2)
	COMPANION_SCALE=paper $(PY) tools/nbtest.py book/$(CHAPTER)

clean:
	rm -rf _build
