# Sluice runs its TypeScript sources directly on Node 24 (type stripping): no build step.
FROM node:24-slim
WORKDIR /opt/sluice
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY src ./src
USER node
EXPOSE 6432
ENTRYPOINT ["node", "bin/sluice.js"]
CMD ["start", "--config", "/etc/sluice/sluice.yaml"]
