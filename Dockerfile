# syntax=docker/dockerfile:1
# PulseWatch API image. Build: docker build -t pulsewatch:$(node -p "require('./package.json').version") .
# Both stages use the same exact Node LTS image; test/deploy/image.test.ts runs the suite's copy of
# this layout on the same Node version (scripts/tools.ts pins it), so what ships is what was tested.

FROM node:24.22.3-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Install scripts are not needed by any dependency, so none runs.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24.22.3-trixie-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the app's user: the process cannot rewrite its own code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The image's own `node` user, by number so that Kubernetes can check runAsNonRoot.
USER 1000:1000
EXPOSE 3000
# server.ts drains on SIGTERM (close-with-grace); node runs as PID 1 and gets the signal directly.
STOPSIGNAL SIGTERM
CMD ["node", "dist/server.js"]
