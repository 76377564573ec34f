# flowstar: one image for the migrations, the app and the workers (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The package first, so the dependency layer is rebuilt only when the code changes.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install '.[db,saq,web]'

# `saq worker.settings` imports worker.py from the working directory.  Your own workflows:
# copy (or mount) their module here and point FLOWSTAR_REGISTRY at it, e.g.
# FLOWSTAR_REGISTRY=myapp.workflows:registry.
COPY worker.py ./

RUN useradd --create-home --uid 1000 flowstar && chown flowstar /app
USER flowstar

CMD ["saq", "worker.settings"]
