// Preload for third-party servers that listen on every interface (Portkey's start-server has no
// host option): `node --import ./bench/gateway/loopback-only.mjs …` makes every TCP listen that
// names no host (or a wildcard one) bind 127.0.0.1 instead, so that the bench stays loopback only.
import net from 'node:net';

const listen = net.Server.prototype.listen;
const WILDCARD = new Set([undefined, null, '', '0.0.0.0', '::']);
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    if (typeof args[1] === 'function' || WILDCARD.has(args[1])) {
      if (typeof args[1] === 'function') args.splice(1, 0, '127.0.0.1');
      else args[1] = '127.0.0.1';
    }
  } else if (args[0] && typeof args[0] === 'object' && !('path' in args[0] && args[0].path) && WILDCARD.has(args[0].host)) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
