# syntax=docker/dockerfile:1
# Roomcast image: build stage compiles TypeScript and better-sqlite3 (native,
# built from source against this Node's headers), then drops dev dependencies;
# the runtime stage is node:20 slim with only dist/src, production
# node_modules and package.json, running as the unprivileged `node` user.
# Same Debian release in both stages, so the native module's glibc matches.

ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /app
# The repository's .npmrc points nodedir at a Debian Node (/usr); the official
# image has its headers under /usr/local.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json .npmrc ./
# --ignore-scripts: `prepare` (the build) needs the sources, copied below.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
COPY tools ./tools
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    SQLITE_PATH=/data/roomcast.db
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist/src ./dist/src
# The embedded store's folder; the chart mounts a volume here.
RUN mkdir /data && chown node:node /data
USER node
EXPOSE 8080
# Liveness only (never a dependency): the same /healthz as the chart's probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM starts the drain (DRAIN_PERIOD); node is PID 1 here, and main.ts
# handles the signal itself, so no init wrapper is needed.
STOPSIGNAL SIGTERM
# NODE_FLAGS of src/config/node-flags.ts (why: there).
CMD ["node", "--single-threaded-gc", "dist/src/main.js"]
