'use strict';
// Starts the example: PORT (default 3000), ASTACK_API_KEY (the operator's admin key; one is
// generated and printed when unset), ASTACK_CONFIG (a SPEC §11 JSON document, optional).
//
//   cd examples/node-express && npm install && ASTACK_API_KEY=... node server.js

const { createApp } = require('./app');

const config = process.env.ASTACK_CONFIG ? JSON.parse(process.env.ASTACK_CONFIG) : undefined;
const { app, sdk } = createApp({ config });
const server = app.listen(Number(process.env.PORT || 3000), process.env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address();
  if (!process.env.ASTACK_API_KEY) console.log(`admin key (shown once): ${sdk.apiKey}`);
  console.log(`listening on http://${address}:${port}`);
});

function stop() {
  server.close(() => {
    sdk.close();
    process.exit(0);
  });
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
