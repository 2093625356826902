# One image for every service: `webhooks serve <service>` picks which (see compose.yaml).
# Only the runtime dependencies are installed (no dev extras); it runs as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# What the wheel is built from (pyproject.toml's [tool.hatch.build.targets.wheel]).
COPY pyproject.toml /tmp/src/
COPY libs /tmp/src/libs
COPY services /tmp/src/services
RUN pip install /tmp/src \
    && rm -rf /tmp/src \
    && useradd --system --uid 10001 --home-dir /var/lib/webhooks --create-home webhooks \
    && install -d -m 0700 -o webhooks -g webhooks /var/lib/webhooks/nats-auth

# `webhooks nats-auth` (compose's nats-auth) writes there: a new volume mounted on it takes
# this owner and mode, so the non-root user can write its seeds.
USER webhooks
WORKDIR /var/lib/webhooks
ENV WEBHOOKS_DATA_DIR=/var/lib/webhooks
EXPOSE 50051 50052 50053 50054 8080
# No HEALTHCHECK here: which service a container runs is its command's; compose.yaml runs
# `webhooks health <service>` for each.
ENTRYPOINT ["webhooks"]
CMD ["--help"]
