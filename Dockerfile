# Warden: one image; `warden serve` runs every part (broker, bot, proxies) in one process.
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
COPY --from=build /app /app
USER 10001
EXPOSE 8080 3000 5433 2222
ENTRYPOINT ["node", "/app/cli/warden.js"]
CMD ["serve", "--config", "/etc/warden/warden.yaml"]
