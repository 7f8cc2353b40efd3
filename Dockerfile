# syntax=docker/dockerfile:1
# The shortlist recommendation service. Build:   docker build -t shortlist .
# Run (a model saved by `shortlist fit --out ./models/retail`):
#   docker run --rm -p 8000:8000 -v "$PWD/models/retail:/model:ro" shortlist
# A model with a two-tower or sentence-embedding source needs torch in the image:
#   docker build --build-arg EXTRAS=serve,faiss,torch -t shortlist .   (the CPU wheel, from TORCH_INDEX)

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
ARG EXTRAS=serve,faiss
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
# torch only when asked for, and then the CPU build (the default index would bring a multi-GB CUDA build).
# Versions come from pyproject.toml's ranges (DL3013: the project itself is what is installed).
# hadolint ignore=DL3013
RUN case ",${EXTRAS}," in *,torch,*|*,text,*) pip install --index-url "${TORCH_INDEX}" torch ;; esac \
 && pip install ".[${EXTRAS}]" \
 && python -c "import shortlist.serving.app, importlib.resources as r; \
assert (r.files('shortlist.serving') / 'static' / 'index.html').is_file(), 'index.html missing from the package'"

FROM python:3.11-slim
# LightGBM needs the OpenMP runtime (DL3008: the base image's Debian release fixes its version).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin shortlist
USER 10001
WORKDIR /tmp
EXPOSE 8000
VOLUME ["/model"]
# Liveness only (/health); readiness with degraded components is GET /ready.
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"]
CMD ["shortlist", "serve", "--model", "/model", "--host", "0.0.0.0", "--port", "8000"]
