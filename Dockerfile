# swf-es: the `swf` command (agents, monitor, MCP) in a container.
#   docker build -t swf-es .
#   docker run --rm swf-es --help
#   docker run --rm --network host swf-es events read --store 'esdb://localhost:2113?tls=false'

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 downloads a prebuilt binary; these build it from source when none fits the platform.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Install without lifecycle scripts (the `prepare` build needs the sources, copied next), then build the
# one native module.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY . .
RUN npm run build && npm prune --omit=dev
# What the package ships (package.json "files"), plus its production dependencies.
RUN mkdir /out && cp -r package.json node_modules dist /out/ \
  && for p in workflows src/monitor/public; do \
       if [ -e "$p" ]; then mkdir -p "/out/$(dirname "$p")" && cp -r "$p" "/out/$p"; fi; \
     done

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out ./
# Where the process writes, owned by `node`: the default store (sqlite:./swf-data/swf.db) and /data, where the
# compose file's monitor keeps its views. A new named volume mounted on a directory of the image starts with that
# directory's contents and owner; on a directory the image lacks, Docker creates the mount point owned by root and
# the monitor, running as `node`, cannot write its views (docs/eventstoredb.md, "Docker").
RUN mkdir -p /app/swf-data /data && chown node:node /app/swf-data /data
USER node
ENTRYPOINT ["node", "dist/src/cli/main.js"]
