'use strict';
// The seed's end-to-end example: an Express API that authorizes each request with an API key,
// creates a realtime session for an end user and hands back the session, a session token and
// the worker to connect to. Against astack only the import line changed.

const express = require('express');
const { AStackSDK, authMiddleware, errorHandler } = require('astack');

function createApp(options = {}) {
  const sdk = options.sdk || new AStackSDK({ apiKey: process.env.ASTACK_API_KEY, config: options.config });
  const app = express();
  app.use(express.json({ limit: '64kb' }));

  app.get('/healthz', (req, res) => res.json({ ok: true }));

  app.post('/api/v1/sessions', authMiddleware(sdk, { operation: 'session.create' }), async (req, res, next) => {
    try {
      const { end_user_id: userId, connection_type: connectionType, quality, features, metadata } = req.body || {};
      const { session } = await sdk.createSession(userId, { connectionType, quality, features, metadata });
      const token = await sdk.generateSessionToken(session.id);
      res.status(201).json({ session, token, workerUrl: session.worker_url });
    } catch (err) {
      next(err);
    }
  });

  app.get('/api/v1/sessions/:id', authMiddleware(sdk, { operation: 'session.read' }), async (req, res, next) => {
    try {
      res.json(await sdk.getSession(req.params.id));
    } catch (err) {
      next(err);
    }
  });

  app.delete('/api/v1/sessions/:id', authMiddleware(sdk, { operation: 'session.terminate' }), async (req, res, next) => {
    try {
      res.json(await sdk.terminateSession(req.params.id));
    } catch (err) {
      next(err);
    }
  });

  app.use(errorHandler());
  return { app, sdk };
}

module.exports = { createApp };
