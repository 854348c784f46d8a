# The loralab API server. `docker compose up` runs it beside PostgreSQL (see docker-compose.yml).
FROM node:20-slim

WORKDIR /app
ENV NODE_ENV=production

COPY package.json package-lock.json ./
# tsx (which runs the TypeScript sources) and esbuild (which bundles the dashboard) are runtime
# dependencies, so the dev tools can stay out of the image.
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json ./
COPY schema ./schema
COPY drizzle ./drizzle
COPY src ./src
COPY web ./web
COPY agents ./agents

ENV HOST=0.0.0.0 PORT=4000 DATA_DIR=/data
EXPOSE 4000

# What `npm start` runs, without npm in between: npm does not pass SIGTERM on to the server, so
# `docker stop` would kill it instead of letting it drain requests and close the database.
CMD ["node", "--import", "tsx", "src/index.ts"]
