# One image for every service: `webhooks serve <service>` picks which (see compose.yaml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY libs ./libs
COPY services ./services
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/webhooks webhooks \
    && mkdir -p /var/lib/webhooks && chown webhooks /var/lib/webhooks
USER webhooks
ENV WEBHOOKS_DATA_DIR=/var/lib/webhooks
ENTRYPOINT ["webhooks"]
