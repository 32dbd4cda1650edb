// Preload for the Portkey gateway (scripts/compare.sh runs `node --require <this file> start-server.js`):
// force every net.Server.listen() in this process onto 127.0.0.1 — Portkey binds all interfaces by
// default, and the benchmarks must stay on loopback (notes/performance.md Appendix D).
'use strict';
const net = require('net');
const orig = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    const port = Number(args[0]);
    const cb = args.find((a) => typeof a === 'function');
    return orig.call(this, { port, host: '127.0.0.1' }, cb);
  }
  if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return orig.apply(this, args);
};
