# The loralab API server (and the agent: `node scripts/run.js agents/cli.ts`). `docker compose up`
# runs it beside PostgreSQL (see docker-compose.yml); deploy/kubernetes/ runs it on a cluster.
FROM node:20-slim

WORKDIR /app
ENV NODE_ENV=production

COPY package.json package-lock.json ./
# The programs run compiled (scripts/build.js), so tsx and the other dev tools stay out of the
# image; esbuild stays: it bundles the programs and the dashboard.
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json ./
COPY scripts ./scripts
COPY schema ./schema
COPY drizzle ./drizzle
COPY src ./src
COPY web ./web
COPY agents ./agents
COPY cli ./cli

# Compiled now, so a container starts without writing to its image (a read-only root file system
# works) and without spending its first seconds on a build.
RUN npm run build && npm run build:web

ENV HOST=0.0.0.0 PORT=4000 DATA_DIR=/data
EXPOSE 4000
# The image's files are root's and read-only to the programs, which run as the image's `node` user
# (uid 1000): DATA_DIR (PGlite, the file artifact store) is the one folder the server writes, /work
# the agent's (docker-compose.yml mounts volumes there; a new volume takes the folder's owner).
RUN mkdir -p /data /work && chown node:node /data /work
USER node

# What `npm start` runs, without npm in between: npm does not pass SIGTERM on to the server, so
# `docker stop` would kill it instead of letting it drain requests and close the database.
CMD ["node", "scripts/run.js", "src/index.ts"]
