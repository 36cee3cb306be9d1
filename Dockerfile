# model-canary: one image, three roles chosen by the command (docker-compose.yml runs each):
#   node dist/src/worker.js         the Temporal worker (rollout workflows and their activities)
#   node dist/src/api/main.js       the REST API ($API_HOST:$API_PORT, GET /healthz)
#   node dist/src/gateway/main.js   the embedded gateway ($GATEWAY_HOST:$GATEWAY_PORT, /healthz, /metrics)
# and, for the `demo` compose profile only, node dist/src/demo/model-main.js and traffic.js.
# Settings come from the environment (src/config.ts); nothing is read from files but $DATA_DIR.
#
#   docker build -t model-canary:local .
#   docker run --rm -e TEMPORAL_ADDRESS=temporal.example:7233 model-canary:local          # worker
#   docker run --rm -p 3000:3000 -e API_HOST=0.0.0.0 ... model-canary:local node dist/src/api/main.js

# The Node release the project is tested on (package.json engines: >= 20.18.1).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- build: all dependencies, TypeScript compiled to dist/ (npm run build, tsconfig.build.json)
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs its install scripts here: tsc is plain JS, and the native parts
# (@temporalio/core-bridge, @swc/core-*) ship prebuilt in their packages.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies only, compiled JS, a non-root user
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps \
    DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install scripts among production dependencies are @swc/core's
# (checks its prebuilt binding, else downloads a wasm fallback) and protobufjs's (a version
# warning); the runtime needs neither. @temporalio/core-bridge ships its native module for five
# platforms: only this one's is kept (about 110 MB less).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && find node_modules/@temporalio/core-bridge/releases -mindepth 1 -maxdepth 1 \
      ! -name "$(uname -m)-unknown-linux-gnu" -exec rm -rf {} + \
 && test -f "node_modules/@temporalio/core-bridge/releases/$(uname -m)-unknown-linux-gnu/index.node" \
 && mkdir -p /data \
 && chown node:node /data
COPY --from=build /app/dist ./dist
# The image's own unprivileged user (uid 1000): the code is root-owned and read-only to it;
# it writes only to $DATA_DIR (the gateway's routes; a volume in docker-compose.yml).
USER node
EXPOSE 3000 8080
CMD ["node", "dist/src/worker.js"]
