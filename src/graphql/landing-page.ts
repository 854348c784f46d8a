// What a browser gets at GET /graphql: a short page of our own. Apollo's default landing page
// would load a sandbox from a CDN into the API's origin.
import type { RequestHandler } from 'express';

const PAGE = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>loralab GraphQL API</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}code{background:#f2f2f2;padding:0 .25rem;white-space:nowrap}a{color:#0645ad}</style></head>
<body>
<h1>loralab GraphQL API</h1>
<p>Send GraphQL operations here with <code>POST</code> and the header <code>Authorization: Bearer &lt;key&gt;</code>;
subscriptions use a WebSocket on this path (graphql-transport-ws) with <code>{ "authorization": "Bearer &lt;key&gt;" }</code> as connection parameters.</p>
<p>People use <a href="/">the dashboard</a>.</p>
</body>
</html>
`;

/** GET /graphql from a browser (no query in the URL): the page; any other GET goes on to GraphQL. */
export const graphqlPage: RequestHandler = (req, res, next) => {
  if (req.query.query !== undefined || !req.accepts('html')) return next();
  res
    .status(200)
    .set('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
    .type('html')
    .send(PAGE);
};
