# Stagecoach, for a NAS or any Docker host.
#
#   docker build -t stagecoach .
#   docker run -d --name stagecoach -e PUID=1000 -e PGID=1000 -e TZ=Europe/Berlin \
#     -v /path/to/config:/config -v /path/to/share:/data -p 127.0.0.1:8080:8080 \
#     --stop-timeout 30 stagecoach
#
# Volumes: /config (config, journal, tokens; chowned to PUID:PGID at each start) and /data (the
# watched folders; never chowned, only checked to be readable). See docs/operations.md.

# Base image, both stages: node:24-bookworm-slim (Node 24.18.0), pinned by its multi-platform
# index digest so that a rebuild gets the same base, the tag kept beside it. This digest could not
# be pulled where it was written (no registry access); it is the one public projects' own builds
# of node:24-bookworm-slim recorded for Node 24.18.0. Dependabot (.github/dependabot.yml) proposes
# the new digest when the tag moves; by hand:
#   docker buildx imagetools inspect node:24-bookworm-slim
# and put the index "Digest:" (not a per-platform one, so ARM builds keep working) on both FROM lines.

# --- build: the toolchain better-sqlite3 needs when no prebuilt binary fits, and the TypeScript
# build with its bundle of the CLI (dist/bundle/main.js, which the entrypoint runs); then the dev
# dependencies are pruned so only production ones are copied on.
FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# npm ci builds native/fs-native.c (syncfs and copy_file_range, see docs/architecture.md) with the toolchain above.
COPY package.json package-lock.json ./
COPY scripts ./scripts
COPY native ./native
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev

# --- runtime: Node LTS slim, production dependencies, no compiler.
FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d
# tini: PID 1 that forwards signals and reaps zombies, also where a NAS UI offers no --init.
# tzdata: for TZ. The image's `node` user (1000:1000) is removed so that the entrypoint's
# `stagecoach` user can take PUID/PGID 1000 without sharing them with another name.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && userdel node \
 && mkdir -p /config /data
# NODE_COMPILE_CACHE: Node 22+ keeps the compiled code of the modules there, so each start after
# the first skips most of compiling the cloud SDKs (about a second of a restart on a small NAS).
ENV NODE_ENV=production \
    NODE_COMPILE_CACHE=/tmp/stagecoach-compile-cache \
    STAGECOACH_CONFIG=/config/stagecoach.yaml \
    PUID=1000 \
    PGID=1000 \
    TZ=Etc/UTC
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/native/build ./native/build
COPY package.json ./
COPY config ./config
COPY docker/stagecoach.yaml docker/entrypoint.sh docker/stagecoach ./docker/
# `docker exec -it stagecoach stagecoach auth gdrive` runs the CLI as PUID:PGID, not as root.
RUN chmod 0755 /app/docker/entrypoint.sh /app/docker/stagecoach \
 && ln -s /app/docker/stagecoach /usr/local/bin/stagecoach
VOLUME ["/config", "/data"]
EXPOSE 8080
# A parked target makes /healthz answer 503, so the container shows as unhealthy until it recovers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Starts as root only to apply PUID/PGID/TZ and chown /config, then drops to PUID:PGID.
ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
CMD ["run"]
