# The in-memory FHIR server of the end-to-end tests (@medplum/fhir-router, pinned by package-lock.json).
FROM node:22-bookworm-slim
WORKDIR /srv
COPY scripts/e2e/package.json scripts/e2e/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY scripts/e2e/fhir-server.mjs ./
EXPOSE 8103
CMD ["node", "fhir-server.mjs", "--port", "8103", "--listen", "0.0.0.0"]
