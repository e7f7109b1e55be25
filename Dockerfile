# Warden: one image that runs `warden serve` (the broker API, the scheduler, the chat bot and the
# Postgres and SSH proxies in one process). The other verbs of the same CLI run in it too, for
# instance `docker run --rm -v ... warden audit verify`.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 (the embedded store) builds from source when no prebuilt binary is reachable.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY lib ./lib
COPY broker ./broker
COPY bot ./bot
COPY proxy ./proxy
COPY cli ./cli
COPY manifests ./manifests

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# CLI verbs run in the container (`warden audit verify`, `warden sessions list`) find the config.
ENV WARDEN_CONFIG=/etc/warden/warden.yaml
COPY --from=build /app /app
# The state directory: the embedded store (store.path: /var/lib/warden/warden.db) and, when
# configured there, the audit checkpoint file. Owned by the user Warden runs as, 0700.
RUN mkdir -p /var/lib/warden && chown 10001:10001 /var/lib/warden && chmod 0700 /var/lib/warden
VOLUME /var/lib/warden
USER 10001:10001
# 8080 broker API, 3000 Slack events (HTTP mode), 6432 Postgres proxy, 2222 SSH proxy: the
# defaults and the example configuration; a port is only open when warden.yaml configures it.
EXPOSE 8080 3000 6432 2222
# Liveness only (the process answers); readiness, /v1/health, also pings the store.
HEALTHCHECK --interval=30s --timeout=5s CMD ["node", "-e", "fetch('http://127.0.0.1:8080/v1/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/cli/warden.js"]
CMD ["serve", "--config", "/etc/warden/warden.yaml"]
