# Stagecoach: build stage with the toolchain better-sqlite3 needs, runtime on Node LTS slim with
# production dependencies only. Volumes: /config (config, state, tokens) and /data (watched folders).
FROM node:24-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
ENV NODE_ENV=production STAGECOACH_CONFIG=/config/stagecoach.yaml
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
USER node
VOLUME ["/config", "/data"]
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["run"]
